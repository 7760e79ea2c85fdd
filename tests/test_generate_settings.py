"""What ``splitbuild generate`` says to create in the CI system, and where: with ``[ci]
environment`` the deployment environment, except when ``[ci] previews`` runs preview jobs outside
it, so that the registry secrets must be repository secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from splitbuild.cli.app import make_app

CONFIG = """
[image]
names = ["ghcr.io/acme/app", "docker.io/acme/app"]
platforms = ["linux/amd64"]
[ci]
environment = "registry"
"""


def generate(tmp_path: Path, config: str) -> str:
    (tmp_path / "splitbuild.toml").write_text(config)
    result = CliRunner().invoke(make_app(), ["generate"])
    assert result.exit_code == 0, result.stderr
    return result.stderr


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _where(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("the workflow reads these"))


def test_the_environment_is_offered_without_previews(tmp_path: Path) -> None:
    where = _where(generate(tmp_path, CONFIG))
    assert "create them in the deployment environment 'registry' (create it), or the repository" in where


def test_previews_need_repository_secrets(tmp_path: Path) -> None:
    err = generate(tmp_path, CONFIG + "previews = true\n")
    where = _where(err)
    assert "create them in the deployment environment" not in where
    assert "or the repository settings" not in where
    assert where.startswith(
        "the workflow reads these; create them in the repository settings > Secrets and variables > Actions "
        "(repository secrets and variables, not environment ones:"
    )
    assert "the preview jobs of [ci] previews run outside the deployment environment 'registry'" in where
    assert "DOCKERHUB_TOKEN" in err
    # The preview job indeed runs in no environment, the merge job in 'registry'.
    text = (tmp_path / ".github" / "workflows" / "splitbuild.yml").read_text()
    jobs = yaml.safe_load(text)["jobs"]
    assert "environment" not in jobs["preview"]
    assert jobs["merge"]["environment"] == "registry"


def test_previews_without_an_environment_say_repository_settings(tmp_path: Path) -> None:
    where = _where(generate(tmp_path, CONFIG.replace('environment = "registry"\n', "previews = true\n")))
    assert where == (
        "the workflow reads these; create them in repository settings > Secrets and variables > Actions:"
    )
