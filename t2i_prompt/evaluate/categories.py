"""The eight CompBench categories, their metrics and official output folders, and where their prompt lists live.

A *prompt set* is a folder in the official ``examples/dataset/`` naming: ``<category>_val.txt`` per category,
``complex_val_{spatial,action}.txt`` (3-in-1 weighting) and ``new_objects.txt`` (numeracy nouns). Two ship with
the package: ``compbench`` (the official val lists, MIT, see ``data/compbench/MANIFEST.md``) and ``shapes`` (the
same categories phrased CompBench's way over the shapes world's objects); any other folder is given by path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
PROMPT_SETS = ("compbench", "shapes")


@dataclass(frozen=True)
class Category:
    name: str
    metric: str  # bvqa | spatial_2d | spatial_3d | numeracy | clip | three_in_one
    folder: str  # where vqa_result.json goes, under <run>/<category>/ (the official names)


CATEGORIES = {c.name: c for c in (
    Category("color", "bvqa", "annotation_blip"),
    Category("shape", "bvqa", "annotation_blip"),
    Category("texture", "bvqa", "annotation_blip"),
    Category("spatial", "spatial_2d", "labels/annotation_obj_detection_2d"),
    Category("3d_spatial", "spatial_3d", "labels/annotation_obj_detection_3d"),
    Category("numeracy", "numeracy", "annotation_num"),
    Category("non_spatial", "clip", "annotation_clip"),
    Category("complex", "three_in_one", "annotation_3_in_1"),
)}
# The metrics 3-in-1 combines, each written to its own official folder under complex/.
COMPLEX_PARTS = {"bvqa": "annotation_blip", "spatial_2d": "labels/annotation_obj_detection_2d",
                 "clip": "annotation_clip"}
SHAPES_CATEGORIES = ("color", "shape", "spatial", "numeracy", "complex")


def check_categories(names) -> list[str]:
    """Known category names, deduplicated in the given order; an unknown one is an error listing the valid ones."""
    out = []
    for name in names:
        if name not in CATEGORIES:
            raise ValueError(f"unknown category {name!r}; choose from: {', '.join(CATEGORIES)}.")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"give at least one category: {', '.join(CATEGORIES)}.")
    return out


def prompt_set_dir(prompts: str | Path) -> Path:
    """``compbench``, ``shapes`` or a folder of ``<category>_val.txt`` files; a missing folder is an error."""
    if str(prompts) in PROMPT_SETS:
        return DATA_DIR / str(prompts)
    path = Path(prompts).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--prompts {prompts}: no such folder; give compbench, shapes or a folder holding "
                                "<category>_val.txt files.")
    return path


def read_list(path: Path, what: str) -> list[str]:
    """Prompt lines as the official loaders read them: split lines, the text before a tab, CR and blanks dropped."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; the prompt folder needs it (official name "
                                f"{path.name}).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text; give one prompt per line.") from None
    return [line.split("\t")[0].strip() for line in text.splitlines() if line.split("\t")[0].strip()]


def category_prompts(prompts: str | Path, category: str) -> list[str]:
    """The val list of ``category`` in a prompt set (file order = image index order)."""
    lines = read_list(prompt_set_dir(prompts) / f"{category}_val.txt", f"{category} prompt file")
    if not lines:
        raise ValueError(f"{category}_val.txt in {prompt_set_dir(prompts)} holds no prompts.")
    return lines


def complex_kinds(prompts: str | Path) -> dict[str, str]:
    """{normalised prompt: spatial | action} from complex_val_spatial/action.txt (3_in_1.py matches
    ``prompt.split('.')[0].lower()``); prompts in neither list are spatial+action."""
    folder = prompt_set_dir(prompts)
    kinds = {}
    for kind in ("spatial", "action"):
        for line in read_list(folder / f"complex_val_{kind}.txt", f"complex {kind} list"):
            kinds.setdefault(normalise_complex(line), kind)
    return kinds


def normalise_complex(prompt: str) -> str:
    return prompt.split(".")[0].lower()


def object_vocabulary(prompts: str | Path) -> dict[str, str]:
    """Numeracy nouns of a prompt set (``new_objects.txt``): {singular or plural: singular}."""
    from .parsing import read_object_vocabulary

    folder = prompt_set_dir(prompts)
    return read_object_vocabulary(read_list(folder / "new_objects.txt", "numeracy noun list"))
