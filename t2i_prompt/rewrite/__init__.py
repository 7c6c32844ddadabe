"""Prompt rewriting with a causal LM (Promptist template or chat models) and its post-processing."""

from t2i_prompt.rewrite.postprocess import ClipWindow, extract_rewrite, normalize_whitespace, template_marker
from t2i_prompt.rewrite.rewriter import DEFAULT_SYSTEM_PROMPT, PROMPTIST_TEMPLATE, PromptRewriter, RewriteCandidate

__all__ = [
    "ClipWindow", "DEFAULT_SYSTEM_PROMPT", "PROMPTIST_TEMPLATE", "PromptRewriter", "RewriteCandidate",
    "extract_rewrite", "normalize_whitespace", "template_marker",
]
