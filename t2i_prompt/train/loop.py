"""Iterative (online-style) DPO: round r samples candidates with policy_r, builds pairs, trains policy_{r+1} from
policy_r with DPO/Sem-DPO. The image/score cache is shared across rounds (keys include the policy), so re-running
a finished round costs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import DPOTrainConfig, LoopConfig, PreferenceConfig, parse_config


@dataclass
class LoopRound:
    round: int
    policy: str
    pairs: int
    model_dir: Path


def run_loop(config: LoopConfig, **components) -> list[LoopRound]:
    """Run ``config.rounds`` rounds; ``components`` (render_fn, rewards, similarity_fn) are passed to the
    preference engine of every round (the rewrite function always comes from the current policy)."""
    from .dpo import run_dpo
    from .preferences import PreferenceEngine, process_state

    out = Path(config.output_dir)
    policy, rounds = config.policy, []
    for r in range(config.rounds):
        round_dir = out / f"round_{r}"
        pref_config = parse_config(PreferenceConfig, ["--config", config.preference_config],
                                   policy=policy, output_dir=str(round_dir / "preferences"),
                                   cache_dir=str(out / "cache"))
        PreferenceEngine(pref_config, **components).run()
        process_state().wait_for_everyone()
        dpo_config = parse_config(DPOTrainConfig, ["--config", config.dpo_config],
                                  model_name_or_path=policy, dataset=str(round_dir / "preferences" / "dataset"),
                                  output_dir=str(round_dir / "dpo"))
        from datasets import load_from_disk

        pairs = len(load_from_disk(dpo_config.dataset))
        if pairs == 0:
            raise ValueError(f"Round {r} kept no preference pairs (see {round_dir / 'preferences' / 'report.md'}); "
                             "lower min_gap, sample more candidates or relax the floors.")
        result = run_dpo(dpo_config)
        rounds.append(LoopRound(round=r, policy=policy, pairs=pairs, model_dir=result.output_dir))
        policy = str(result.output_dir)
    return rounds
