"""Packaging: pyproject.toml declares ranges (no exact pins) and the lock file's pins lie inside them."""

from __future__ import annotations

from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
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
