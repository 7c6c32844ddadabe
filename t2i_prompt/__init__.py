"""t2i-prompt: make text-to-image prompts work better.

Three parts: ``rewrite`` (an LLM prompt rewriter trained with SFT, DPO and Sem-DPO),
``attention`` (inference-time attention hooks for diffusers UNets) and ``shapes``
(the embedded default world where every method's effect can be measured exactly).
"""

__version__ = "0.1.0"
