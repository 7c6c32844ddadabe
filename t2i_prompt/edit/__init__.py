"""Image editing over generation and attention hooks: repaint one region; invert a real image (DDIM, null-text,
DPL) and edit it with prompt-to-prompt (``edit_image``)."""

from .dpl import DPL_PRESETS, DPLConfig
from .image_edit import EditConfig, EditResult, edit_image, load_learned, save_edit
from .inversion import (
           EmbeddingSchedule,
           Inversion,
           OptimisationDiverged,
           ddim_invert,
           null_text_inversion,
)
from .repaint import LatentRecorder, RepaintHook, RepaintOutput, repaint

__all__ = ["DPL_PRESETS", "DPLConfig", "EditConfig", "EditResult", "edit_image", "load_learned", "save_edit",
           "EmbeddingSchedule", "Inversion", "OptimisationDiverged", "ddim_invert", "null_text_inversion",
           "LatentRecorder", "RepaintHook", "RepaintOutput", "repaint"]
