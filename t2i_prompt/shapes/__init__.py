"""The shapes world: the embedded default model and the exact benchmark."""
