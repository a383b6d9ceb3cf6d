"""The lockfiles: every dependency pyproject.toml declares is pinned there, within its bounds,
with hashes, the three files agree, and this environment runs exactly what dev.lock pins.

After adding a dependency to pyproject.toml, `make lock` brings these back to green.
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.migrate.config import PROJECT_ROOT

LOCKS = PROJECT_ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found[canonicalize_name(match[1])] = match[2]
    return found


def declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    groups = {"main": [Requirement(r) for r in project["dependencies"]]}
    for extra, requirements in project["optional-dependencies"].items():
        groups[extra] = [Requirement(r) for r in requirements]
    return groups


@pytest.mark.parametrize("group", ["main", "dev", "bench"])
def test_every_declared_dependency_is_pinned_within_its_bounds(group: str) -> None:
    locked = pins(LOCKS / f"{group}.lock")
    for requirement in declared()[group]:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is in pyproject.toml but not in {group}.lock: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{group}.lock pins {name}=={locked[name]} outside {requirement}: make lock"
        )


@pytest.mark.parametrize("group", ["main", "dev", "bench"])
def test_every_pin_has_a_hash(group: str) -> None:
    text = (LOCKS / f"{group}.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[1])
    for entry in entries:
        if PIN.match(entry):
            assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_locks_agree_on_every_package_they_share() -> None:
    main, dev, bench = (pins(LOCKS / f"{g}.lock") for g in ("main", "dev", "bench"))
    assert main.items() <= dev.items(), "dev.lock differs from main.lock: make lock"
    shared = dev.keys() & bench.keys()
    assert {n: dev[n] for n in shared} == {n: bench[n] for n in shared}


def test_this_environment_runs_what_dev_lock_pins() -> None:
    # `make test` installs from dev.lock; a version that differs was installed by other means.
    wrong = {}
    for name, version in pins(LOCKS / "dev.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "(not installed)"
        if installed != version:
            wrong[name] = f"{installed}, locked {version}"
    assert not wrong, f"installed differently from requirements/dev.lock: {wrong}"
