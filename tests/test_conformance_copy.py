"""tests/conformance holds unchanged copies of the reference material; no test reads outside the repository.

The copies are checked against the SHA-256 table of tests/conformance/README.md (inside the
repository: nothing is compared with a file outside it). ``test_clone.py`` runs the conformance
tests in a fresh clone with nothing beside it.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

from tests.constants import CONFORMANCE

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", re.MULTILINE)


def _recorded() -> dict[str, str]:
    return dict(ROW.findall((CONFORMANCE / "README.md").read_text(encoding="utf-8")))


def test_every_copy_matches_its_recorded_sha256() -> None:
    recorded = _recorded()
    present = {
        p.relative_to(CONFORMANCE).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in CONFORMANCE.rglob("*")
        if p.is_file() and p.name != "README.md" and "__pycache__" not in p.parts
    }
    assert {"auth/auth-vectors.json", "metadata/check_vectors.py", "reference/check_reference.py"} <= set(
        present
    )
    assert present == recorded


def test_the_conformance_folder_is_inside_the_repository() -> None:
    assert CONFORMANCE.resolve().is_relative_to(REPO)


def _escapes(source: str) -> list[str]:
    """Expressions in a test module that reach above the repository or name a path outside it."""
    found: list[str] = []
    tree = ast.parse(source)
    prose = {
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    for node in ast.walk(tree):
        # Path(__file__).resolve().parent.parent.parent: tests/x.py -> tests -> repo -> beyond.
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            depth, inner = 0, node
            while isinstance(inner, ast.Attribute) and inner.attr == "parent":
                depth, inner = depth + 1, inner.value
            if depth >= 3:
                found.append(ast.unparse(node))
        # Path(__file__).parents[2] and beyond.
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
            and node.slice.value >= 2
        ):
            found.append(ast.unparse(node))
        # The project's reference material beside the repository, or an absolute path to it.
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in prose
            and ("../shared" in node.value or node.value.startswith("/work/"))
        ):
            found.append(repr(node.value))
    return found


def test_the_escape_finder_finds_the_old_shared_path() -> None:
    old = (
        'SHARED = Path(__file__).resolve().parent.parent.parent / "shared"\n'
        "X = Path(__file__).parents[2]\n"
        'CHECKER = "../shared/conformance/metadata/check_vectors.py"\n'
    )
    assert sorted(_escapes(old)) == [
        "'../shared/conformance/metadata/check_vectors.py'",
        "Path(__file__).parents[2]",
        "Path(__file__).resolve().parent.parent.parent",
    ]
    assert (
        _escapes(
            '"""Not ``../shared``."""\nREPO = Path(__file__).resolve().parent.parent\nT = "{{../text}}"\n'
        )
        == []
    )


def test_no_test_module_reaches_outside_the_repository() -> None:
    offenders = {
        path.relative_to(REPO).as_posix(): hits
        for path in sorted((REPO / "tests").rglob("*.py"))
        if CONFORMANCE not in path.parents and path != Path(__file__).resolve()
        for hits in [_escapes(path.read_text(encoding="utf-8"))]
        if hits
    }
    assert offenders == {}
