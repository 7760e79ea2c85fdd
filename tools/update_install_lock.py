#!/usr/bin/env python3
"""Rewrite ``splitbuild/workflow/install-lock.json``: the hash-locked dependency closure the
generated merge jobs install splitbuild's dependencies from (``pip install --require-hashes``).

The versions are those installed beside this checkout's splitbuild (walked from its metadata, with
the markers of this interpreter); pip-tools' ``pip-compile --generate-hashes`` adds the hash of
every file the package index holds for each version, so the lock installs on any platform. Run it
after changing the dependencies in pyproject.toml and installing them:

    python3 -m pip install pip-tools && python3 tools/update_install_lock.py

Needs the package index (the only step of the project that does); the tests check the result
against pyproject.toml offline.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "splitbuild" / "workflow" / "install-lock.json"
COMMENT = (
    "The dependency closure of splitbuild that the generated merge jobs install with "
    "pip --require-hashes before any registry login: the versions installed when the lock was "
    "written, each with the hash of every file the package index holds for it. Written by "
    "tools/update_install_lock.py (pip-compile --generate-hashes); do not edit by hand."
)


def closure() -> dict[str, str]:
    """Installed name -> version of everything splitbuild needs here, splitbuild excluded."""
    found: dict[str, str] = {}
    todo = ["splitbuild"]
    while todo:
        for line in metadata.distribution(todo.pop()).requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = canonicalize_name(requirement.name)
            if name not in found:
                found[name] = metadata.version(requirement.name)
                todo.append(requirement.name)
    return dict(sorted(found.items()))


def compile_hashes(pins: dict[str, str]) -> dict[str, list[str]]:
    """name -> sorted ``sha256:...`` of every file of the pinned version (pip-compile)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "lock.in"
        target = Path(tmp) / "lock.txt"
        source.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "piptools",
                "compile",
                "--quiet",
                "--generate-hashes",
                "--allow-unsafe",
                "--no-header",
                "--no-annotate",
                "--strip-extras",
                "--no-emit-index-url",
                "--output-file",
                str(target),
                str(source),
            ],
            check=True,
        )
        text = target.read_text().replace("\\\n", " ")
    hashes: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):  # comments, index options
            continue
        spec, *options = line.split()
        name, _, version = spec.partition("==")
        name = canonicalize_name(name)
        if pins.get(name) != version:
            raise SystemExit(f"pip-compile resolved {spec}, not the installed {name}=={pins.get(name)}")
        hashes[name] = sorted(o.removeprefix("--hash=") for o in options if o.startswith("--hash="))
    if set(hashes) != set(pins):
        raise SystemExit(f"pip-compile resolved {sorted(hashes)}, not {sorted(pins)}")
    return hashes


def main() -> None:
    pins = closure()
    hashes = compile_hashes(pins)
    packages = [{"name": name, "version": version, "hashes": hashes[name]} for name, version in pins.items()]
    if any(not re.fullmatch(r"sha256:[0-9a-f]{64}", h) for p in packages for h in p["hashes"]):
        raise SystemExit("pip-compile wrote a hash that is not sha256")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    data = {"comment": COMMENT, "python": python, "packages": packages}
    LOCK.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(packages)} packages")


if __name__ == "__main__":
    main()
