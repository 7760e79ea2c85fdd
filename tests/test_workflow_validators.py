"""The generated workflows pass GitHub's workflow schema, actionlint (with shellcheck on every
``run:`` script) and zizmor (offline, pedantic persona) with no finding; the reference files in
``workflows/`` are exactly what the generator writes for the configs in ``examples/``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitbuild.config import load_config
from splitbuild.planner import plan
from splitbuild.workflow import actionlint
from splitbuild.workflow.github import render_workflow
from tests.workflow_variants import EXAMPLES, VARIANTS, load_variant

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
EXAMPLES_DIR = REPO / "examples"


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed (the dev extra installs it; shellcheck comes from apt)"
    return found


def _reference_workflows() -> list[Path]:
    # GitHub workflows are workflows/NAME.yml; other files (actionlint configs, other CI systems)
    # carry a second suffix.
    return sorted(p for p in WORKFLOWS.glob("*.yml") if "." not in p.stem)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """Every variant and example rendered to a file, plus one actionlint config for all their labels."""
    out = tmp_path_factory.mktemp("generated")
    labels: dict[str, None] = {}
    files: list[Path] = []
    for name in [*VARIANTS, *EXAMPLES]:
        config = load_variant(name)
        the_plan = plan(config)
        path = out / f"{name}.yml"
        path.write_text(
            render_workflow(config, the_plan, config_path="splitbuild.toml", output_path=path.name)
        )
        files.append(path)
        labels.update(dict.fromkeys(actionlint.unknown_runner_labels(config, the_plan)))
    lint_config = out / "actionlint.yaml"
    lint_config.write_text(actionlint.render_actionlint_config(tuple(labels), "tests"))
    return files, lint_config


def _all_files(generated: tuple[list[Path], Path]) -> list[Path]:
    return [*_reference_workflows(), *generated[0]]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_reference_workflows_exist_for_every_example() -> None:
    names = {p.stem for p in _reference_workflows()}
    assert set(EXAMPLES) <= names
    examples = {p.parent.name for p in EXAMPLES_DIR.glob("*/splitbuild.toml")}
    assert names == examples


@pytest.mark.parametrize("name", EXAMPLES)
def test_reference_workflow_matches_generator(name: str) -> None:
    """The drift check: regenerate from the example config and compare bytes."""
    config_path = f"examples/{name}/splitbuild.toml"
    output_path = f"workflows/{name}.yml"
    config = load_config(REPO / config_path)
    the_plan = plan(config)
    expected = render_workflow(config, the_plan, config_path=config_path, output_path=output_path)
    assert (REPO / output_path).read_text() == expected, f"regenerate with the command in {output_path}"
    labels = actionlint.unknown_runner_labels(config, the_plan)
    lint_path = actionlint.actionlint_config_path(REPO / output_path)
    if labels:
        assert lint_path.read_text() == actionlint.render_actionlint_config(labels, f"{name}.yml")
    else:
        assert not lint_path.exists()


def test_every_reference_workflow_drift_checked() -> None:
    for path in _reference_workflows():
        config_path = EXAMPLES_DIR / path.stem / "splitbuild.toml"
        assert config_path.is_file(), f"{path.name} has no example config at {config_path}"
        config = load_config(config_path)
        expected = render_workflow(
            config,
            plan(config),
            config_path=f"examples/{path.stem}/splitbuild.toml",
            output_path=f"workflows/{path.name}",
        )
        assert path.read_text() == expected, path.name


def test_github_workflow_schema(generated: tuple[list[Path], Path]) -> None:
    files = _all_files(generated)
    result = _run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)], REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_shellcheck_is_available_to_actionlint() -> None:
    assert shutil.which("shellcheck"), "install shellcheck (Debian package) so actionlint checks run: scripts"


def test_actionlint_reports_nothing(generated: tuple[list[Path], Path]) -> None:
    shellcheck = _tool("shellcheck")
    files, lint_config = generated
    lint = _tool("actionlint")
    result = _run([lint, "-shellcheck", shellcheck, "-config-file", str(lint_config), *map(str, files)], REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in _reference_workflows():
        config = actionlint.actionlint_config_path(path)
        argv = [lint, "-shellcheck", shellcheck, *(["-config-file", str(config)] if config.exists() else [])]
        result = _run([*argv, str(path)], REPO)
        assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_what_it_should(tmp_path: Path) -> None:
    """Guards the guard: shellcheck integration and the runner-label check are live."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: t\non: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04-riscv\n"
        "    steps:\n      - run: echo $(ls)\n        shell: bash\n"
    )
    result = _run([_tool("actionlint"), "-shellcheck", _tool("shellcheck"), str(bad)], tmp_path)
    assert result.returncode != 0
    assert "SC2046" in result.stdout
    assert 'label "ubuntu-24.04-riscv" is unknown' in result.stdout


def test_zizmor_reports_no_findings(generated: tuple[list[Path], Path]) -> None:
    files = _all_files(generated)
    result = _run([_tool("zizmor"), "--offline", "--no-config", "--pedantic", *map(str, files)], REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: t\non: push\npermissions: {}\njobs:\n  a:\n    name: a\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
    )
    result = _run([_tool("zizmor"), "--offline", "--no-config", str(bad)], tmp_path)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout or "artipacked" in result.stdout
