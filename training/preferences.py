"""Preference data engine: sample K rewrites per prompt, render I images each (shared seeds), score them against the
original prompt, select pairs; writes ``<output_dir>/dataset`` (HF dataset), ``pairs.jsonl`` and ``report.{json,md}``.

    python training/preferences.py --config training/configs/preferences_tiny.yaml
    torchrun --nproc_per_node 2 training/preferences.py --config training/configs/preferences_tiny.yaml   # 2 CPU processes

Killed runs restart where they stopped (every image and score is cached under ``cache_dir``). Library code:
``t2i_prompt.train.preferences``.
"""

from __future__ import annotations



def main(argv: list[str] | None = None) -> None:
    from t2i_prompt.train.config import PreferenceConfig, parse_config
    from t2i_prompt.train.preferences import run_preferences

    output = run_preferences(parse_config(PreferenceConfig, argv))
    if output is not None:  # main process
        r = output.report
        print(f"{r['pairs_kept']} pairs from {r['prompts']} prompts ({output.rendered} images rendered, "
              f"{output.reused} from cache) -> {output.output_dir}; dropped: {r['dropped']}")


def make_parser():
    from t2i_prompt.train.config import PreferenceConfig, make_parser as config_parser

    return config_parser(PreferenceConfig)


if __name__ == "__main__":
    main()
