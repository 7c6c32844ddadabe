"""Text-to-image generation over diffusers components (SD1.x/2.x, SDXL, the shapes world)."""

from .generator import GenerationOutput, Generator
from .pipeline import PromptEmbeddings, PromptTruncationWarning, T2IPipeline, T2IPipelineOutput
from .run import GenerationRun

__all__ = ["GenerationOutput", "Generator", "GenerationRun", "PromptEmbeddings", "PromptTruncationWarning",
           "T2IPipeline", "T2IPipelineOutput"]
