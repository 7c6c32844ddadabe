"""Text-to-image generation over diffusers components (SD1.x/2.x, SDXL, the shapes world)."""

from .generator import GenerationOutput, ImageGenerator
from .pipeline import T2IPipeline
from .prompts import PromptTruncationWarning
from .run import GenerationRun, PromptEmbeddings, T2IPipelineOutput

__all__ = ["GenerationOutput", "ImageGenerator", "GenerationRun", "PromptEmbeddings", "PromptTruncationWarning",
           "T2IPipeline", "T2IPipelineOutput"]
