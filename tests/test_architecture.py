"""The layers of pyproject.toml's ``[tool.importlinter]`` contracts hold, and a contract does bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", _LINT, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_contracts_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken." in done.stdout
    assert "BROKEN" not in done.stdout


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    """The same contracts over a copy of the package where the models import the store."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "splitbuild", tmp_path / "splitbuild", ignore=skip)
    models = tmp_path / "splitbuild" / "models.py"
    models.write_text(models.read_text() + "\nfrom splitbuild.store import base as _upward  # noqa\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "Registry stack" in done.stdout
    assert "splitbuild.models -> splitbuild.store.base" in done.stdout


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in helper modules (tests/images.py, tests/hello_repo.py, ...) or
    conftest, never in a test module another one imports: each test file stays runnable alone."""
    import ast

    offenders = []
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [
                    node.module,
                    *(f"{node.module}.{a.name}" for a in node.names),
                ]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(name.startswith("tests.test_") for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
