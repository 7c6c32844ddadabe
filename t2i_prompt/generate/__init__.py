"""Text-to-image generation over diffusers components (SD1.x/2.x, SDXL, the shapes world)."""
