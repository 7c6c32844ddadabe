"""Config files and command lines for dataclass configs: YAML first, then ``--key value`` overrides.

Every key that is not a field of the config is an error naming it, its closest valid spellings and every valid key
(trl's own scripts ignore unknown keys, so a typo silently trains the wrong thing); argparse's prefix matching is off
(``--learning_rat`` is an error, as it is in YAML).
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence, TypeVar

ConfigT = TypeVar("ConfigT")


def help_field(text: str, **extra: Any) -> dict[str, Any]:
    """``field(metadata=...)`` of a config field: its one help text (shown by ``--help``) and argparse extras."""
    return {"help": text, **extra}


def parse_mapping(name: str, text: str) -> dict:
    """A JSON object given on the command line (``--floors '{"clip": 0.25}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"{name}={text!r} must be a JSON object, e.g. '{{\"clip\": 0.25}}'.")
    return value


def unknown_keys_error(cls: type, unknown: Sequence[str], where: str) -> ValueError:
    """A ValueError naming the unknown keys, their closest valid spellings and every valid key."""
    valid = sorted(f.name for f in fields(cls) if f.init)
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=3)
        hints.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    listing = ", ".join(valid) if len(valid) <= 40 else f"{len(valid)} keys, listed by --help"
    return ValueError(f"Unknown {cls.__name__} key(s) in {where}: {', '.join(hints)}. Valid keys: {listing}.")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, a syntax error or a non-mapping is a clear error naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist; pass an existing YAML file with --config.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ValueError(f"Config file {path} is not UTF-8 text (byte {e.start}); pass a YAML file.") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"Config file {path} is not valid YAML{where}: {problem}; fix the syntax.") from e
    if not isinstance(data, dict):
        raise ValueError(f"Config file {path} must hold a mapping of key: value, got {type(data).__name__}.")
    return data


def make_parser(cls: type) -> Any:
    """The parser of a config class (``--config`` plus every field, no prefix matching)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls, allow_abbrev=False)
    parser.add_argument("--config", default=None, help="YAML file with any of the keys below; CLI flags override it.")
    return parser


def parse_config(cls: type[ConfigT], argv: Sequence[str] | None = None, **overrides: Any) -> ConfigT:
    """Build ``cls`` from ``--config file.yaml`` then ``--key value`` CLI overrides (then keyword ``overrides``).

    Values from YAML or the command line are type-converted by the field types (``HfArgumentParser``); any key that
    is not a field raises ``ValueError`` listing the valid keys. ``-h``/``--help`` prints every key and exits.
    """
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        make_parser(cls).print_help()
        raise SystemExit(0)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)
    values: dict[str, Any] = load_yaml(known.config) if known.config else {}
    values.update(overrides)
    valid = {f.name for f in fields(cls) if f.init}
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise unknown_keys_error(cls, unknown, known.config or "overrides")
    flags = [r.lstrip("-").split("=")[0].replace("-", "_") for r in rest if r.startswith("--")]
    unknown = [k for k in flags if k not in valid and not k.startswith("no_")]
    if unknown:
        raise unknown_keys_error(cls, unknown, "the command line")
    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls, allow_abbrev=False)
    # argparse type-converts string defaults (YAML reads `1e-3` as a string), so YAML values behave like CLI ones.
    parser.set_defaults(**{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in values.items()})
    config, remaining = parser.parse_args_into_dataclasses(args=rest, return_remaining_strings=True)
    if remaining:
        keys = [r.lstrip("-").split("=")[0] for r in remaining if r.startswith("--")] or remaining
        raise unknown_keys_error(cls, keys, "the command line")
    return config
