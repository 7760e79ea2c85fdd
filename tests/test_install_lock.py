"""The hash lock the generated merge jobs install from matches pyproject.toml's dependencies and
is a closed set: every locked package's own requirements are locked too."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from splitbuild.workflow.install_lock import locked_packages, requirements_text

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _locked() -> dict[str, str]:
    return {p.name: p.version for p in locked_packages()}


def test_every_dependency_of_pyproject_is_locked_within_its_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    locked = _locked()
    for line in dependencies:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is a dependency but not in install-lock.json"
        assert requirement.specifier.contains(locked[name], prereleases=True), (name, locked[name])
    assert "splitbuild" not in locked


def test_the_lock_is_closed_under_requirements() -> None:
    """Each locked package's requirements (names, from the installed metadata, for the Python
    versions the merge job may use) are locked too, so ``pip check`` passes after a
    ``--no-deps`` install."""
    locked = _locked()
    for name in locked:
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            needed = any(
                requirement.marker is None or requirement.marker.evaluate({"extra": "", "python_version": v})
                for v in ("3.11", "3.12", "3.13", "3.14")
            )
            if needed and requirement.marker is not None and "extra" in str(requirement.marker):
                needed = False
            if needed:
                assert canonicalize_name(requirement.name) in locked, f"{name} needs {requirement}"


def test_every_line_is_pinned_with_sha256_hashes() -> None:
    text = requirements_text()
    for package in locked_packages():
        assert package.hashes
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in package.hashes)
        assert len(set(package.hashes)) == len(package.hashes)
        assert f"{package.name}=={package.version} \\\n" in text
    assert text.count("==") == len(locked_packages())
