"""``splitbuild generate`` run from outside the repository its config belongs to: the default
outputs (the workflow, the actionlint config) go to the top of that repository, not to the current
directory; an explicit ``--output`` stays relative to the current directory. And the refusals of
``generate`` and ``init`` are :class:`~splitbuild.errors.Refused` (exit 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from splitbuild.cli.app import make_app

# linux/ppc64le runs on a runner label actionlint does not know: generate writes an actionlint config.
CUSTOM = """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/ppc64le"]
[runners]
"linux/ppc64le" = "ubuntu-24.04-ppc64le"
"""
GITLAB = """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64"]
[ci]
provider = "gitlab"
"""
WORKFLOW = Path(".github/workflows/splitbuild.yml")
LINT = Path(".github/actionlint.yaml")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the repository ``proj`` (with its config), the current directory."""
    (tmp_path / "proj" / ".git").mkdir(parents=True)
    (tmp_path / "proj" / "splitbuild.toml").write_text(CUSTOM)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_outputs_go_to_the_repository_of_the_config(parent: Path) -> None:
    code, _, err = invoke("generate", "-c", "proj/splitbuild.toml")
    assert code == 0, err
    assert (parent / "proj" / WORKFLOW).is_file()
    assert (parent / "proj" / LINT).is_file()
    assert not (parent / ".github").exists()
    assert "wrote proj/.github/workflows/splitbuild.yml" in err
    assert "wrote proj/.github/actionlint.yaml" in err
    assert Path.cwd() == parent  # the command leaves the current directory as it was
    # The file reads as if generated at the top: the same text whichever directory it ran from.
    text = (parent / "proj" / WORKFLOW).read_text()
    assert text.splitlines()[0].endswith("from splitbuild.toml; do not edit by hand.")
    assert text.splitlines()[1].endswith("run: splitbuild generate")


def test_an_absolute_config_path_is_named_from_the_top(parent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = invoke("generate", "-c", str(parent / "proj" / "splitbuild.toml"))
    assert code == 0, err
    assert (parent / "proj" / WORKFLOW).read_text().splitlines()[1].endswith("run: splitbuild generate")
    assert not (elsewhere / ".github").exists()


def test_same_files_from_the_parent_as_from_the_top(parent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("generate", "-c", "proj/splitbuild.toml")[0] == 0
    from_parent = (parent / "proj" / WORKFLOW).read_text(), (parent / "proj" / LINT).read_text()
    monkeypatch.chdir(parent / "proj")
    code, _, err = invoke("generate", "--check")
    assert code == 0, err
    assert ((parent / "proj" / WORKFLOW).read_text(), (parent / "proj" / LINT).read_text()) == from_parent


def test_check_reads_the_files_in_the_repository(parent: Path) -> None:
    code, out, err = invoke("generate", "--check", "-c", "proj/splitbuild.toml")
    assert code == 10
    assert "--- proj/.github/workflows/splitbuild.yml (on disk)" in out
    assert "proj/.github/workflows/splitbuild.yml, proj/.github/actionlint.yaml out of date" in err
    assert "hint: run: splitbuild generate --config proj/splitbuild.toml" in err
    assert not (parent / "proj" / ".github").exists()
    assert invoke("generate", "-c", "proj/splitbuild.toml")[0] == 0
    code, out, err = invoke("generate", "--check", "-c", "proj/splitbuild.toml")
    assert (code, out) == (0, ""), err
    assert not (parent / ".github").exists()


def test_the_repositorys_own_actionlint_config_is_the_one_read(parent: Path) -> None:
    lint = parent / "proj" / LINT
    lint.parent.mkdir()
    lint.write_text("# mine\nself-hosted-runner:\n  labels: [gpu]\n")
    code, _, err = invoke("generate", "-c", "proj/splitbuild.toml")
    assert code == 3
    assert "does not list runner labels ubuntu-24.04-ppc64le" in err
    assert not (parent / ".github").exists()
    lint.write_text("# mine\nself-hosted-runner:\n  labels: [gpu, ubuntu-24.04-ppc64le]\n")
    code, _, err = invoke("generate", "-c", "proj/splitbuild.toml")
    assert code == 0, err
    assert lint.read_text().startswith("# mine")
    assert (parent / "proj" / WORKFLOW).is_file()


def test_a_subdirectory_of_the_repository_writes_at_its_top(
    parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = parent / "proj" / "src"
    sub.mkdir()
    monkeypatch.chdir(sub)
    code, _, err = invoke("generate", "-c", "../splitbuild.toml")
    assert code == 0, err
    assert "wrote ../.github/workflows/splitbuild.yml" in err
    assert (parent / "proj" / WORKFLOW).is_file()
    assert not (sub / ".github").exists()


def test_an_explicit_output_stays_relative_to_the_current_directory(parent: Path) -> None:
    code, _, err = invoke("generate", "-c", "proj/splitbuild.toml", "--output", "out/w.yml")
    assert code == 0, err
    assert (parent / "out" / "w.yml").is_file()
    assert (parent / "out" / "w.actionlint.yaml").is_file()
    assert not (parent / "proj" / ".github").exists()
    code, _, err = invoke(
        "generate", "-c", "proj/splitbuild.toml", "--actionlint-config", "lint/labels.yaml"
    )  # the default workflow path, an explicit actionlint config: each where it belongs
    assert code == 0, err
    assert (parent / "proj" / WORKFLOW).is_file()
    assert yaml.safe_load((parent / "lint" / "labels.yaml").read_text()) == {
        "self-hosted-runner": {"labels": ["ubuntu-24.04-ppc64le"]}
    }
    assert "wrote lint/labels.yaml" in err


def test_outside_git_the_config_directory_is_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "splitbuild.toml").write_text(CUSTOM)
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("generate", "-c", "proj/splitbuild.toml")
    assert code == 0, err
    assert (tmp_path / "proj" / WORKFLOW).is_file()
    assert not (tmp_path / ".github").exists()


def test_repository_top(tmp_path: Path) -> None:
    from splitbuild.config import repository_top

    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert repository_top(tmp_path / "repo" / "a" / "b" / "x.toml") == (tmp_path / "repo").resolve()
    assert repository_top(tmp_path / "repo" / "x.toml") == (tmp_path / "repo").resolve()
    (tmp_path / "loose").mkdir()
    assert repository_top(tmp_path / "loose" / "x.toml") == (tmp_path / "loose").resolve()


# -- refusals: exit 8 ------------------------------------------------------------------------------


def test_a_hand_written_gitlab_ci_yml_is_refused_with_exit_8(parent: Path) -> None:
    (parent / "proj" / "splitbuild.toml").write_text(GITLAB)
    mine = "stages: [test]\nunit:\n  script: [make test]\n"
    (parent / "proj" / ".gitlab-ci.yml").write_text(mine)
    code, out, err = invoke("generate", "-c", "proj/splitbuild.toml")
    assert code == 8
    assert out == ""
    first, hint = err.splitlines()
    assert first == (
        "splitbuild: error: .gitlab-ci.yml exists and was not written by splitbuild; not overwriting it"
    )
    assert hint.startswith("hint: write the split build to its own file (--output .gitlab/splitbuild.yml)")
    assert (parent / "proj" / ".gitlab-ci.yml").read_text() == mine
    assert not (parent / ".gitlab-ci.yml").exists()


def test_init_over_an_existing_config_is_refused_with_exit_8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "splitbuild.toml").write_text(CUSTOM)
    code, _, err = invoke("init", "--image", "ghcr.io/acme/app")
    assert code == 8
    assert err.splitlines() == [
        "splitbuild: error: splitbuild.toml already exists; not overwriting it",
        "hint: use --force to overwrite it",
    ]
    assert (tmp_path / "splitbuild.toml").read_text() == CUSTOM
    code, _, err = invoke("init", "--image", "ghcr.io/acme/app", "--force")
    assert code == 0, err
    assert (tmp_path / "splitbuild.toml").read_text() != CUSTOM
