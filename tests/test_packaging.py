"""Packaging: pyproject.toml declares ranges (no exact pins) and the lock file's pins lie inside them."""

from __future__ import annotations

from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


# Extras that make/CI do not install (so the lock file does not pin them): spaCy for CompBench's official parser.
UNLOCKED_EXTRAS = ("compbench",)


def _declared(unlocked: bool = False) -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = [r for name, extra in extras.items() if (name in UNLOCKED_EXTRAS) == unlocked for r in extra]
    reqs += [] if unlocked else list(project["dependencies"])
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"the lock file pins exact versions, got {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_pyproject_declares_ranges_that_hold_the_locked_versions():
    declared, locked = _declared(), _locked()
    assert set(declared) == set(locked)  # one list of dependencies, in two precisions
    for name, req in declared.items():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req}: a range, not a pin"
        assert req.specifier.contains(locked[name], prereleases=True), f"lock {name}=={locked[name]} outside {req}"
    assert str(declared["torch"].specifier) == ">=2.13"  # the oldest torch the suite is run on
    for name, req in _declared(unlocked=True).items():
        assert name not in locked and req.specifier, f"{req}: an unlocked extra declares a range"
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req}: a range, not a pin"
