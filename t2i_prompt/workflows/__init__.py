"""Plain, tested workflows shared by the CLI, the app and the evaluators: they compute and return objects;
saving is a separate function (no gradio or argparse here)."""

from .compare import CompareResult, compare_rewrite, compare_rewrites, save_comparison, save_comparisons
from .grid import comparison_grid, stack_vertically

__all__ = ["CompareResult", "compare_rewrite", "compare_rewrites", "comparison_grid", "save_comparison",
           "save_comparisons", "stack_vertically"]
