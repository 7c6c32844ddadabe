"""What a user types into the app, checked: seeds ("0, 1" / "0-3"), prompts, model names."""

from __future__ import annotations

import random
from typing import Any, Sequence

MAX_SEEDS = 16
MAX_SEED_VALUE = 2**31 - 1


def parse_seeds(text: str | int | Sequence[int], max_seeds: int = MAX_SEEDS) -> list[int]:
    """``"0, 1, 2"`` / ``"0-3"`` / ``7`` / ``[0, 1]`` -> a list of seeds, each in [0, 2**31-1], at most
    ``max_seeds``."""
    if isinstance(text, bool):
        raise ValueError(f"seeds must be integers, got {text!r}.")
    if isinstance(text, (int, float)):
        values = [text]
    elif isinstance(text, str):
        values = []
        for part in [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]:
            lo, sep, hi = part.partition("-")
            try:
                if sep and lo:
                    a, b = int(lo), int(hi)
                    if b < a or b - a >= max_seeds:
                        raise ValueError
                    values += list(range(a, b + 1))
                else:
                    values.append(int(part))
            except ValueError:
                raise ValueError(f"seeds {text!r}: {part!r} is not an integer or a range like 0-3; "
                                 "write seeds as '0, 1, 2' or '0-3'.") from None
    else:
        values = list(text)
    seeds = []
    for v in values:
        if isinstance(v, bool) or not float(v).is_integer() or not 0 <= int(v) <= MAX_SEED_VALUE:
            raise ValueError(f"seed {v!r} must be an integer in [0, {MAX_SEED_VALUE}].")
        seeds.append(int(v))
    if not seeds:
        raise ValueError("give at least one seed, e.g. '0' or '0, 1'.")
    if len(seeds) > max_seeds:
        raise ValueError(f"{len(seeds)} seeds given; at most {max_seeds} per request.")
    return seeds


def random_seed(rng: random.Random | None = None) -> int:
    """A fresh seed for the "randomize" button (shown to the user, so the image can be made again)."""
    return (rng or random.SystemRandom()).randint(0, MAX_SEED_VALUE)


def check_prompt(prompt: Any, what: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"the {what} is empty; type a description of the image, e.g. 'a red circle above a blue "
                         "square'.")
    return prompt.strip()


def is_shapes(model_name: str) -> bool:
    """The name of the shapes world or one of its parts (``shapes``, ``shapes:clip``, ...)."""
    return model_name == "shapes" or model_name.startswith("shapes:")
