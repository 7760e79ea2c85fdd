"""``splitbuild init``, ``plan``, ``generate`` and ``pins`` through the CLI, and the starter config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.config import parse_config
from splitbuild.workflow import starter

TWO = """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]
"""
CUSTOM = """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/ppc64le"]
[runners]
"linux/ppc64le" = "ubuntu-24.04-ppc64le"
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(make_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_generate_writes_the_default_path_and_check_passes(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO)
    code, _, err = invoke(runner, "generate")
    assert code == 0, err
    workflow = repo / ".github" / "workflows" / "splitbuild.yml"
    assert "wrote .github/workflows/splitbuild.yml" in err
    data = yaml.safe_load(workflow.read_text())
    assert list(data["jobs"]) == ["build-linux-amd64", "build-linux-arm64", "build-linux-riscv64", "merge"]
    assert workflow.read_text().splitlines()[1].endswith("run: splitbuild generate")
    assert not (repo / ".github" / "actionlint.yaml").exists()
    assert invoke(runner, "generate", "--check")[0] == 0


def test_check_fails_with_a_diff_when_out_of_date(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO)
    assert invoke(runner, "generate")[0] == 0
    (repo / "splitbuild.toml").write_text(TWO.replace(', "linux/riscv64"', ""))
    workflow = repo / ".github" / "workflows" / "splitbuild.yml"
    before = workflow.read_text()
    code, out, err = invoke(runner, "generate", "--check")
    assert code == 10  # OutOfDate: its own exit code, not an internal error's 1
    assert "-  build-linux-riscv64:" in out
    assert "--- .github/workflows/splitbuild.yml (on disk)" in out
    assert "out of date with splitbuild.toml" in err
    assert "hint: run: splitbuild generate" in err
    assert workflow.read_text() == before


def test_check_fails_when_the_file_is_missing(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO)
    code, _, err = invoke(runner, "generate", "--check", "--output", "ci.yml")
    assert code == 10
    assert "ci.yml out of date" in err
    assert not (repo / "ci.yml").exists()


def test_generate_writes_actionlint_config_for_unknown_labels(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(CUSTOM)
    code, _, err = invoke(runner, "generate")
    assert code == 0, err
    lint = yaml.safe_load((repo / ".github" / "actionlint.yaml").read_text())
    assert lint == {"self-hosted-runner": {"labels": ["ubuntu-24.04-ppc64le"]}}
    assert invoke(runner, "generate", "--check")[0] == 0
    code, _, _ = invoke(runner, "generate", "--output", "out/w.yml")
    assert code == 0
    assert (repo / "out" / "w.actionlint.yaml").is_file()


def test_hand_written_actionlint_config_is_respected(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(CUSTOM)
    lint = repo / ".github" / "actionlint.yaml"
    lint.parent.mkdir()
    lint.write_text("# mine\nself-hosted-runner:\n  labels: [gpu]\n")
    code, _, err = invoke(runner, "generate")
    assert code == 3
    assert "does not list runner labels ubuntu-24.04-ppc64le" in err
    lint.write_text("# mine\nself-hosted-runner:\n  labels: [gpu, ubuntu-24.04-ppc64le]\n")
    assert invoke(runner, "generate")[0] == 0
    assert lint.read_text().startswith("# mine")


def test_generate_reports_config_errors_in_one_line(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO.replace("linux/riscv64", "linux/riscv"))
    code, out, err = invoke(runner, "generate")
    assert code == 3
    assert err.startswith("splitbuild: error: splitbuild.toml: image.platforms: unknown architecture 'riscv'")
    assert out == ""
    code, _, err = invoke(runner, "generate", "--config", "nope.toml")
    assert code == 3
    assert "nope.toml: config file not found" in err
    assert "splitbuild init" in err


def test_plan_table_and_json(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO)
    code, out, _ = invoke(runner, "plan")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PLATFORM", "RUNNER", "MODE", "WHY"]
    assert lines[1].split()[:3] == ["linux/amd64", "ubuntu-24.04", "native"]
    assert lines[2].split()[:3] == ["linux/arm64", "ubuntu-24.04-arm", "native"]
    assert lines[3].split()[:3] == ["linux/riscv64", "ubuntu-24.04", "qemu"]
    assert any("ubuntu-24.04-riscv" in line for line in lines if line.startswith("note: linux/riscv64"))
    code, out, _ = invoke(runner, "plan", "--json")
    data = json.loads(out)
    assert [leg["mode"] for leg in data["legs"]] == ["native", "native", "qemu"]
    assert data["legs"][2]["qemu"] == "riscv64"
    assert data["legs"][2]["output"] == "digest_linux_riscv64"
    assert data["notes"][0].startswith("attestations: ")
    assert any("unknown/unknown" in note for note in data["notes"])


def test_plan_explains_attestations_and_signing(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO + '[ci]\nsbom = true\nsign = "cosign"\nattest = true\n')
    code, out, _ = invoke(runner, "plan")
    assert code == 0
    notes = [line.removeprefix("note: ") for line in out.splitlines() if line.startswith("note: ")]
    plan_notes = [n for n in notes if not n.startswith("linux/")]
    assert plan_notes[0].startswith("attestations: BuildKit gives each platform image")
    assert "and an SBOM" in plan_notes[0]
    assert plan_notes[1].startswith("attestation manifests appear in the index as unknown/unknown entries")
    assert [n.split(":")[0] for n in plan_notes[2:]] == ["signing", "attestation"]
    data = json.loads(invoke(runner, "plan", "--json")[1])
    assert data["notes"] == plan_notes


def test_generate_writes_a_signed_workflow(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO + '[ci]\nsign = "cosign"\nattest = true\n')
    code, _, err = invoke(runner, "generate")
    assert code == 0, err
    data = yaml.safe_load((repo / ".github" / "workflows" / "splitbuild.yml").read_text())
    assert data["jobs"]["merge"]["permissions"] == {
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    code, out, _ = invoke(runner, "pins")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()][-2:] == [
        "sigstore/cosign-installer",
        "actions/attest-build-provenance",
    ]
    code, _, err = invoke(runner, "generate", "--ci", "gitlab", "--output", "gl.yml")
    assert code == 3
    assert "attest = true is not supported with provider 'gitlab'" in err


def test_pins_command(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(TWO)
    code, out, _ = invoke(runner, "pins")
    assert code == 0
    actions = [line.split()[0] for line in out.splitlines()]
    assert "docker/setup-qemu-action" in actions
    code, out, _ = invoke(runner, "pins", "--json")
    data = json.loads(out)
    assert {"action", "tag", "sha", "source", "commit_date"} <= set(data[0])
    (repo / "splitbuild.toml").write_text(TWO.replace(', "linux/riscv64"', ""))
    code, out, _ = invoke(runner, "pins")
    assert "docker/setup-qemu-action" not in out
    code, out, _ = invoke(runner, "pins", "--all", "--config", "missing.toml")
    assert code == 0
    assert "docker/setup-qemu-action" in out


def _git_repo(path: Path, remote: str | None) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)


def test_init_detects_remote_and_dockerfile(runner: CliRunner, repo: Path) -> None:
    _git_repo(repo, "git@github.com:Acme/Web-App.git")
    (repo / "docker").mkdir()
    (repo / "docker" / "Dockerfile").write_text("FROM scratch\n")
    code, _, err = invoke(runner, "init")
    assert code == 0, err
    config = parse_config((repo / "splitbuild.toml").read_text())
    assert config.image.names == ["ghcr.io/acme/web-app"]
    assert (config.image.context, config.image.dockerfile) == ("docker", None)  # docker/Dockerfile
    assert config.image.platforms == ["linux/amd64", "linux/arm64"]
    code, _, err = invoke(runner, "init")
    assert code == 8  # Refused: a safety check, not a command line of the wrong shape
    assert "already exists" in err
    code, _, err = invoke(runner, "init", "--force", "--image", "quay.io/x/y", "--platform", "linux/amd64")
    assert code == 0
    text = (repo / "splitbuild.toml").read_text()
    assert 'names = ["quay.io/x/y"]' in text


def test_init_without_remote_writes_a_placeholder_that_fails_loudly(runner: CliRunner, repo: Path) -> None:
    code, _, err = invoke(runner, "init")
    assert code == 0
    assert "no GitHub remote found" in err
    assert "no Dockerfile found" in err
    code, _, err = invoke(runner, "generate")
    assert code == 3
    assert "image.names" in err
    assert "OWNER/REPO" in err


@pytest.mark.parametrize(
    ("url", "image"),
    [
        ("git@github.com:Acme/App.git", "ghcr.io/acme/app"),
        ("https://github.com/acme/app", "ghcr.io/acme/app"),
        ("https://github.com/acme/app.git/", "ghcr.io/acme/app"),
        ("https://x-access-token:secret@github.com/acme/app.git", "ghcr.io/acme/app"),
        ("ssh://git@github.com:22/acme/my.app.git", "ghcr.io/acme/my.app"),
        ("git@gitlab.com:group/sub/project.git", "registry.gitlab.com/group/sub/project"),
        ("https://github.com/acme/sub/app", None),
        ("https://example.org/acme/app.git", None),
        ("git@github.com:acme/App!.git", None),
        ("/srv/git/app.git", None),
        ("", None),
    ],
)
def test_image_from_remote(url: str, image: str | None) -> None:
    assert starter.image_from_remote(url) == image


def test_git_remote_url(tmp_path: Path) -> None:
    _git_repo(tmp_path / "a", "https://github.com/acme/a.git")
    _git_repo(tmp_path / "b", None)
    assert starter.git_remote_url(tmp_path / "a") == "https://github.com/acme/a.git"
    assert starter.git_remote_url(tmp_path / "b") is None


def test_detect_dockerfile(tmp_path: Path) -> None:
    assert starter.detect_dockerfile(tmp_path) is None
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "Dockerfile").write_text("")
    assert starter.detect_dockerfile(tmp_path) is None
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "deep" / "Dockerfile").write_text("")
    assert starter.detect_dockerfile(tmp_path) == "b/deep/Dockerfile"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Containerfile").write_text("")
    assert starter.detect_dockerfile(tmp_path) == "a/Containerfile"
    (tmp_path / "Containerfile").write_text("")
    assert starter.detect_dockerfile(tmp_path) == "Containerfile"
    (tmp_path / "Dockerfile").write_text("")
    assert starter.detect_dockerfile(tmp_path) == "Dockerfile"


def test_starter_config_is_valid_and_documents_the_keys() -> None:
    text = starter.starter_config(image="ghcr.io/acme/app", dockerfile=None, platforms=["linux/amd64"])
    config = parse_config(text)
    assert config.image.dockerfile is None
    assert config.tags.rules == ["type=ref,event=branch", "type=semver,pattern={{version}}", "type=sha"]
    for key in (
        "build-args",
        "secrets",
        "runners",
        "cache",
        "provenance",
        "sign",
        "attest",
        "install",
        "logins",
        "merge-runner",
    ):
        assert key in text
    # Every commented-out example line is valid TOML when uncommented.
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and ("=" in line or line.startswith("# [")) else line
        for line in text.splitlines()
    )
    uncommented = uncommented.replace(
        'platforms = ["linux/amd64"]', 'platforms = ["linux/ppc64le", "linux/riscv64"]'
    )
    uncommented = uncommented.replace('"splitbuild==<version>"', '"splitbuild==0.1.0"')
    full = parse_config(uncommented)
    assert set(full.runners) == {"linux/ppc64le", "linux/riscv64"}
    assert list(full.ci.logins) == ["docker.io"]
    assert full.image.build_args == {"VERSION": "1.0"}
    assert (full.ci.sign, full.ci.attest) == ("cosign", True)


LOGINS = """
[image]
names = ["quay.io/acme/app", "docker.io/acme/app", "ghcr.io/acme/app"]
platforms = ["linux/amd64"]
[image.secrets]
npm = "NPM_TOKEN"
[ci]
environment = "registry"
[ci.logins."quay.io"]
username-var = "QUAY_USER"
password-secret = "QUAY_TOKEN"
"""


def test_generate_prints_the_secrets_and_variables_to_create(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(LOGINS)
    code, _, err = invoke(runner, "generate")
    assert code == 0, err
    lines = [line.split() for line in err.splitlines() if line.startswith("  ")]
    assert [words[:2] for words in lines] == [
        ["variable", "QUAY_USER"],
        ["secret", "QUAY_TOKEN"],
        ["variable", "DOCKERHUB_USERNAME"],
        ["secret", "DOCKERHUB_TOKEN"],
        ["secret", "NPM_TOKEN"],
    ]
    assert "deployment environment 'registry'" in err
    assert "GITHUB_TOKEN" not in err  # provided by the runner
    text = (repo / ".github" / "workflows" / "splitbuild.yml").read_text()
    for words in lines:
        kind = "vars" if words[0] == "variable" else "secrets"
        assert f"${{{{ {kind}.{words[1]} }}}}" in text
    (repo / "gl.toml").write_text(LOGINS.replace(', "ghcr.io/acme/app"', ""))
    code, _, err = invoke(runner, "generate", "--ci", "gitlab", "--config", "gl.toml", "--output", "gl.yml")
    assert code == 0, err
    assert "CI/CD secret     QUAY_TOKEN" in err
    assert "CI/CD variable   QUAY_USER" in err
