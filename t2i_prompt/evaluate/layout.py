"""The official CompBench file layout: ``<run>/<category>/samples/<prompt>_<NNNNNN>.png``.

NNNNNN is a 6-digit global index in val-list order (prompt i owns ``n*i .. n*i+n-1``); the official scripts read the
prompt back as the text before the ``_`` and sort on the digits after it, so a prompt must not hold ``_`` or ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SAMPLES = "samples"
IMAGES_LOG = "images.jsonl"
RESULT_FILE = "vqa_result.json"
SEED_BASE = 42  # image k of a prompt uses seed 42 + k (GORS_finetune/inference_eval.py)
_NAME = re.compile(r"^(?P<prompt>[^_/]+)_(?P<index>\d{6})\.png$")


@dataclass(frozen=True)
class Sample:
    index: int
    prompt: str
    path: Path


def check_prompt(prompt: str, where: str = "") -> str:
    """A prompt usable as a file name in the layout; ``_`` or ``/`` is an error (the file name carries it)."""
    bad = [c for c in "_/" if c in prompt]
    if bad:
        raise ValueError(f"prompt {prompt!r}{where} contains {' and '.join(repr(c) for c in bad)}, which the "
                         "official layout cannot carry in a file name (the scripts split names on '_'); rephrase it "
                         "or replace the character in the prompt file.")
    return prompt


def sample_name(prompt: str, index: int) -> str:
    return f"{check_prompt(prompt)}_{index:06d}.png"


def sample_index(prompt_number: int, image_number: int, images_per_prompt: int) -> int:
    return prompt_number * images_per_prompt + image_number


def read_samples(category_dir: str | Path) -> list[Sample]:
    """Every sample of ``<category_dir>/samples/`` in index order; a name off the layout is an error naming it."""
    folder = Path(category_dir) / SAMPLES
    if not folder.is_dir():
        raise FileNotFoundError(f"no samples folder {folder}; a run holds <category>/samples/<prompt>_<NNNNNN>.png "
                                "(generate first, or point --run at the folder above <category>/).")
    samples, seen = [], {}
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        m = _NAME.match(path.name)
        if m is None or not path.is_file():
            raise ValueError(f"{path} does not follow the layout <prompt>_<NNNNNN>.png (6-digit index, no '_' in "
                             "the prompt); rename or move it out of samples/.")
        index = int(m["index"])
        if index in seen:
            raise ValueError(f"{path.name} and {seen[index]} share the index {index:06d}; each image needs its own.")
        seen[index] = path.name
        samples.append(Sample(index, m["prompt"], path))
    if not samples:
        raise ValueError(f"{folder} holds no images.")
    return sorted(samples, key=lambda s: s.index)


def check_image(path: Path) -> None:
    """A cheap header check (no decoding): a file that is not an image is an error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            pass
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path} is not a readable image ({type(e).__name__}); replace or remove it.") from None


def load_image(path: Path):
    """The RGB image at ``path``; a file that is not an image is an error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path} is not a readable image ({type(e).__name__}); replace or remove it.") from None
