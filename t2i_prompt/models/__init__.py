"""Model loading: one way to name a model (hub id, local directory, ``tiny:<arch>``, ``shapes``)."""
