"""Issue 16 acceptance 7: the environment is installed from the lock files, so every run
(a fresh clone's `make setup`, CI, the image) gets the same versions, each checked by hash."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;([^\\]*))?")


def pins(name: str) -> dict[str, str]:
    """The lock's `name==version` lines; each pin must carry at least one hash."""
    text = (ROOT / name).read_text()
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = PIN.match(block)
        if match:
            assert "--hash=sha256:" in block, f"{name}: {match.group(1)} has no hash"
            # A pin for other Pythons or platforms (a marker not true here) is not for us.
            if match.group(3) is None or Marker(match.group(3).strip()).evaluate():
                found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def test_the_environment_is_the_lock() -> None:
    """What is installed here (`pip freeze`) is exactly what the dev lock pins."""
    locked = pins("requirements-dev.lock")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {
        name: (version, installed.get(name)) for name, version in locked.items()
        if installed.get(name) != version
    }  # fmt: skip
    assert differ == {}, "installed differs from requirements-dev.lock (run `make setup`)"


def test_every_declared_dependency_is_locked() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = pins("requirements.lock")
    dev = pins("requirements-dev.lock")
    for requirement in map(Requirement, project["dependencies"]):
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} missing from requirements.lock (run `make lock`)"
        assert requirement.specifier.contains(runtime[name]), name
        assert dev.get(name) == runtime[name], f"{name}: the two locks disagree"
    extras = project["optional-dependencies"]
    for line in [*extras["test"], *extras["dev"]]:
        requirement = Requirement(line)
        if requirement.name == "firstcontact":
            continue
        name = canonicalize_name(requirement.name)
        assert name in dev, f"{name} missing from requirements-dev.lock (run `make lock`)"


def test_setup_ci_and_the_image_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps -e ." in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    workflow = (ROOT / ".github" / "workflows" / "test.yml").read_text()
    assert "make test" in workflow
