"""Image editing over generation and attention hooks: repaint one region (more editing methods build here)."""

from .repaint import LatentRecorder, RepaintHook, RepaintOutput, repaint

__all__ = ["LatentRecorder", "RepaintHook", "RepaintOutput", "repaint"]
