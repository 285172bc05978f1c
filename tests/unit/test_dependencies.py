"""The locks: requirements.txt (what the Functions app installs) and requirements-dev.txt pin, with
hashes, exactly what pyproject.toml declares. Stale after a dependency change: run `make lock`."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text.split("[", maxsplit=1)[0]).lower()


def _declared(*groups: str) -> dict[str, str]:
    project = PYPROJECT["project"]
    # The infra lock holds checkov alone (its own venv); the others build on the app's dependencies.
    specs = [] if groups == ("infra",) else list(project["dependencies"])
    for group in groups:
        specs += project["optional-dependencies"][group]
    pins = {}
    for spec in specs:
        m = _PIN.match(spec)
        assert m, f"`{spec}` in pyproject.toml is not pinned with =="
        pins[_name(m[1])] = m[2]
    return pins


def _locked(file: str) -> dict[str, tuple[str, int]]:
    """Name -> (version, number of hashes) of every requirement in a lock file."""
    locked: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / file).read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            current = _name(m[1])
            locked[current] = (m[2], 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = locked[current]
            locked[current] = (version, hashes + 1)
    return locked


@pytest.mark.parametrize(
    ("file", "groups"),
    [
        ("requirements.txt", ()),
        ("requirements-dev.txt", ("local", "dev")),
        ("requirements-infra.txt", ("infra",)),
    ],
)
def test_each_lock_pins_what_pyproject_declares_with_hashes(
    file: str, groups: tuple[str, ...]
) -> None:
    locked = _locked(file)
    declared = _declared(*groups)
    stale = {n: v for n, v in declared.items() if locked.get(n, ("", 0))[0] != v}
    assert stale == {}, f"{file} is stale: run `make lock`"
    assert [n for n, (_, hashes) in locked.items() if hashes == 0] == []


def test_the_functions_app_lock_carries_no_local_or_dev_tool() -> None:
    app = _locked("requirements.txt")
    tools = set(_declared("local", "dev")) - set(_declared())
    assert tools & set(app) == set()
    assert set(app) <= set(_locked("requirements-dev.txt"))
