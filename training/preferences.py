"""Preference data engine: sample K rewrites per prompt, render I images each (shared seeds), score them against the
original prompt, select pairs; writes ``<output_dir>/dataset`` (HF dataset), ``pairs.jsonl`` and ``report.{json,md}``.

    python training/preferences.py --config training/configs/preferences_tiny.yaml
    torchrun --nproc_per_node 2 training/preferences.py --config training/configs/preferences_tiny.yaml   # 2 CPU processes

Killed runs restart where they stopped (every image and score is cached under ``cache_dir``). Library code:
``t2i_prompt.train.preferences``.
"""

from __future__ import annotations

from t2i_prompt.cli.boundary import config_script, run_script


def report(config, output) -> str | None:
    if output is None:  # not the main process
        return None
    r = output.report
    return (f"{r['pairs_kept']} pairs from {r['prompts']} prompts ({output.rendered} images rendered, "
            f"{output.reused} from cache) -> {output.output_dir}; dropped: {r['dropped']}")


main, make_parser = config_script("t2i_prompt.train.config:PreferenceConfig", "t2i_prompt.train.preferences:run_preferences", report)

if __name__ == "__main__":
    run_script(main)
