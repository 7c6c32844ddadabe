"""Training data: load pairs/preferences from JSONL or an HF dataset, validate them, format them for trl.

Formats (``prompt_format``):

* ``rephrase`` -- Promptist (microsoft/LMOps: promptist): the LM sees ``"{prompt} Rephrase:"`` and the refined prompt
  is the completion after it (a leading space keeps the byte-level tokenization natural).
* ``chat`` -- trl's conversational prompt/completion format; the tokenizer's chat template renders it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def load_records(source: str | Path | None, split: str = "train"):
    """A ``datasets.Dataset`` from a .jsonl/.json file, a ``save_to_disk`` directory, or a cached hub dataset."""
    import datasets

    if source is None:
        raise ValueError("No dataset given; set `dataset:` to a .jsonl file, a save_to_disk directory or a hub id.")
    from ..cache import recover_dir

    path = Path(source).expanduser()
    recover_dir(path)  # a swap killed between its two renames left the previous copy aside: put it back
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise ValueError(f"Dataset file {path} must be .jsonl or .json (one JSON object per line).")
        return datasets.Dataset.from_list(read_jsonl(path))
    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"Dataset {path} has splits {list(loaded)}, not {split!r}; set `dataset_split`.")
            loaded = loaded[split]
        return loaded
    if "/" in str(source) and not str(source).startswith((".", "/", "~")):
        try:
            return datasets.load_dataset(str(source), split=split)
        except Exception as err:  # offline misses raise several error types
            raise FileNotFoundError(
                f"Dataset {source!r} is neither a local file/directory nor a cached hub dataset ({err}). Pass a "
                ".jsonl file or a directory written by Dataset.save_to_disk."
            ) from err
    raise FileNotFoundError(f"Dataset {source!r} does not exist; pass a .jsonl file or a save_to_disk directory.")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (a .json file may also hold one list of objects); bad lines name their number."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n} is not valid JSON ({err.msg}).") from err
    return rows


def require_columns(dataset, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{what} dataset is missing column(s) {missing}; it has {dataset.column_names}. Rename the columns or set "
            "the matching *_column option."
        )


def _first_bad_row(values: Sequence[Any], is_bad) -> int | None:
    return next((i for i, v in enumerate(values) if is_bad(v)), None)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _not_text(value: Any) -> bool:
    return not isinstance(value, (str, list))  # a string, or a chat conversation (list of messages)


def require_text(dataset, columns: Sequence[str], what: str) -> None:
    """Every value of ``columns`` is text (a number in ``chosen`` would be trained as its repr)."""
    for column in columns:
        row = _first_bad_row(dataset[column], _not_text)
        if row is not None:
            value = dataset[column][row]
            raise ValueError(f"{what} dataset row {row}: column {column!r} holds {type(value).__name__} {value!r}, "
                             "not text; quote it in the data file.")


def validate_pairs(dataset, source_column: str, target_column: str) -> None:
    """SFT pairs: both columns exist and no row has an empty source or target."""
    require_columns(dataset, [source_column, target_column], "SFT")
    require_text(dataset, [source_column, target_column], "SFT")
    for column in (source_column, target_column):
        row = _first_bad_row(dataset[column], _is_empty)
        if row is not None:
            raise ValueError(f"SFT dataset row {row}: column {column!r} is empty; drop or fill that row.")


def validate_preferences(dataset, prompt_column: str = "prompt") -> None:
    """Preference pairs: prompt/chosen/rejected exist, none is empty, and chosen != rejected in every row."""
    require_columns(dataset, [prompt_column, "chosen", "rejected"], "Preference")
    if len(dataset) == 0:
        raise ValueError("Preference dataset is empty; the preference engine kept no pairs (see its report).")
    require_text(dataset, [prompt_column, "chosen", "rejected"], "Preference")
    for column in (prompt_column, "chosen", "rejected"):
        row = _first_bad_row(dataset[column], _is_empty)
        if row is not None:
            raise ValueError(f"Preference dataset row {row}: {column!r} is empty; drop that row.")
    same = [i for i, (c, r) in enumerate(zip(dataset["chosen"], dataset["rejected"])) if c.strip() == r.strip()]
    if same:
        raise ValueError(
            f"Preference dataset rows {same[:5]}{'...' if len(same) > 5 else ''} have chosen == rejected, which "
            "carries no preference; drop them."
        )


def format_prompt(prompt: str, prompt_format: str, template: str, system_prompt: str):
    """The LM input for a plain prompt: a string (``rephrase``) or a conversation (``chat``: optional system
    message, then the prompt as the user turn), matching ``PromptRewriter.format_input``."""
    if prompt_format == "chat":
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return [*system, {"role": "user", "content": prompt}]
    return template.format(prompt=prompt)


def format_completion(text: str, prompt_format: str):
    """The target text: `` text`` after the Promptist template, or an assistant message."""
    if prompt_format == "chat":
        return [{"role": "assistant", "content": text.strip()}]
    return " " + text.strip()


def to_sft_dataset(dataset, config) -> Any:
    """(source, target) rows -> trl prompt/completion rows (loss on the completion only)."""
    validate_pairs(dataset, config.source_column, config.target_column)

    def convert(row):
        return {
            "prompt": format_prompt(row[config.source_column], config.prompt_format, config.template,
                                    config.system_prompt),
            "completion": format_completion(row[config.target_column], config.prompt_format),
        }

    return dataset.map(convert, remove_columns=dataset.column_names)


def to_preference_dataset(dataset, config) -> Any:
    """(original prompt, chosen, rejected) rows -> trl preference rows; ``original`` keeps the plain prompt."""
    validate_preferences(dataset, config.original_column)

    def convert(row):
        original = row[config.original_column]
        return {
            "original": original,
            "prompt": format_prompt(original, config.prompt_format, config.template, config.system_prompt),
            "chosen": format_completion(row["chosen"], config.prompt_format),
            "rejected": format_completion(row["rejected"], config.prompt_format),
        }

    return dataset.map(convert, remove_columns=dataset.column_names)


def completion_text(completion) -> str:
    """Plain text of a formatted completion (string or assistant message list)."""
    if isinstance(completion, list):
        return " ".join(m["content"] for m in completion)
    return completion.strip()
