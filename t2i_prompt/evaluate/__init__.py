"""T2I-CompBench(++) evaluation: official layout, official scoring rules, transformers or shapes-world evaluators.

``categories`` (the 8 categories, prompt sets), ``parsing`` (what each metric reads from a prompt), ``rules`` (the
official per-image rules, pure), ``backends`` / ``shapes_backend`` / ``transformers_backend`` (evaluator models),
``metrics`` (a rule over a batch), ``layout`` (file names), ``generation`` / ``scoring`` (resumable, sharded
runs), ``report`` (summaries, paired comparisons), ``runner`` (end to end).
"""
