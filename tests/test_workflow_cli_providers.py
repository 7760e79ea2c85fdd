"""``splitbuild generate``/``plan``/``init``/``pins`` with ``--ci gitlab|forgejo`` and with
``[ci] provider``: default paths, the regenerate command in the header, --check, and the
hand-written ``.gitlab-ci.yml`` that is never overwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.config import parse_config
from splitbuild.planner import plan
from splitbuild.workflow.github import build_job_id, render_workflow
from splitbuild.workflow.gitlab import build_job_name, merge_job_name, render_pipeline
from splitbuild.workflow.gitlab_signing import sign_job_name

PORTABLE = """
[image]
names = ["docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[ci.forgejo.runners]
"linux/arm64" = "arm64"
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "splitbuild.toml").write_text(PORTABLE)
    return tmp_path


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(make_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_generate_gitlab_writes_gitlab_ci_yml_and_check_passes(runner: CliRunner, repo: Path) -> None:
    code, _, err = invoke(runner, "generate", "--ci", "gitlab")
    assert code == 0, err
    assert "wrote .gitlab-ci.yml" in err
    text = (repo / ".gitlab-ci.yml").read_text()
    assert text.splitlines()[1].endswith("run: splitbuild generate --ci gitlab")
    pipeline = yaml.safe_load(text)
    assert list(pipeline) == [
        "splitbuild:build:linux/amd64",
        "splitbuild:build:linux/arm64",
        "splitbuild:merge",
    ]
    assert not (repo / ".github").exists()
    assert invoke(runner, "generate", "--ci", "gitlab", "--check")[0] == 0
    (repo / "splitbuild.toml").write_text(PORTABLE.replace('"linux/amd64", ', ""))
    code, out, err = invoke(runner, "generate", "--ci", "gitlab", "--check")
    assert code == 10
    assert "-splitbuild:build:linux/amd64:" in out
    assert "hint: run: splitbuild generate --ci gitlab" in err


def test_hand_written_gitlab_ci_yml_is_never_overwritten(runner: CliRunner, repo: Path) -> None:
    mine = "stages: [test]\nunit:\n  script: [make test]\n"
    (repo / ".gitlab-ci.yml").write_text(mine)
    code, _, err = invoke(runner, "generate", "--ci", "gitlab")
    assert code == 8  # Refused: a safety check, not a command line of the wrong shape
    assert ".gitlab-ci.yml exists and was not written by splitbuild" in err
    assert "include" in err
    assert (repo / ".gitlab-ci.yml").read_text() == mine
    code, _, err = invoke(runner, "generate", "--ci", "gitlab", "--output", ".gitlab/splitbuild.yml")
    assert code == 0, err
    text = (repo / ".gitlab" / "splitbuild.yml").read_text()
    assert "--output .gitlab/splitbuild.yml" in text.splitlines()[1]
    assert "# Include it from .gitlab-ci.yml: include: [{local: .gitlab/splitbuild.yml}]" in text


def test_provider_from_the_config_needs_no_flag(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(PORTABLE + '[ci]\nprovider = "gitlab"\n')
    code, _, err = invoke(runner, "generate")
    assert code == 0, err
    text = (repo / ".gitlab-ci.yml").read_text()
    assert text.splitlines()[1].endswith("run: splitbuild generate")
    assert invoke(runner, "generate", "--check")[0] == 0
    assert invoke(runner, "generate", "--ci", "gitlab", "--check")[0] == 0
    # Back to GitHub for this config: the command must say so.
    code, _, err = invoke(runner, "generate", "--ci", "github")
    assert code == 0, err
    github = (repo / ".github" / "workflows" / "splitbuild.yml").read_text()
    assert github.splitlines()[1].endswith("run: splitbuild generate --ci github")


def test_generate_forgejo_writes_into_forgejo_workflows(runner: CliRunner, repo: Path) -> None:
    code, _, err = invoke(runner, "generate", "--ci", "forgejo")
    assert code == 0, err
    path = repo / ".forgejo" / "workflows" / "splitbuild.yml"
    workflow = yaml.safe_load(path.read_text())
    builds = [job for name, job in workflow["jobs"].items() if name != "merge"]
    assert [job["runs-on"] for job in builds] == ["ubuntu-latest", "arm64"]
    # no actionlint config: its runner-label check is about GitHub's runners
    assert not (repo / ".forgejo" / "actionlint.yaml").exists()
    assert not list(repo.glob("**/*actionlint*"))
    assert invoke(runner, "generate", "--ci", "forgejo", "--check")[0] == 0


def test_plan_for_each_provider(runner: CliRunner, repo: Path) -> None:
    code, out, _ = invoke(runner, "plan", "--ci", "gitlab")
    assert code == 0
    assert out.splitlines()[1].split()[:3] == ["linux/amd64", "saas-linux-small-amd64", "native"]
    assert out.splitlines()[2].split()[:3] == ["linux/arm64", "saas-linux-small-arm64", "native"]
    code, out, _ = invoke(runner, "plan", "--ci", "forgejo", "--json")
    assert code == 0
    assert '"provider": "forgejo"' in out


def test_unknown_provider_is_a_usage_error(runner: CliRunner, repo: Path) -> None:
    for command in ("generate", "plan"):
        code, _, err = invoke(runner, command, "--ci", "jenkins")
        assert code == 2
        assert "--ci 'jenkins': must be one of github, gitlab, forgejo" in err


def test_pins_explains_that_gitlab_uses_none(runner: CliRunner, repo: Path) -> None:
    (repo / "splitbuild.toml").write_text(PORTABLE + '[ci]\nprovider = "gitlab"\n')
    code, _, err = invoke(runner, "pins")
    assert code == 2
    assert "the GitLab pipeline uses no actions" in err
    (repo / "splitbuild.toml").write_text(PORTABLE + '[ci]\nprovider = "forgejo"\n')
    code, out, _ = invoke(runner, "pins")
    assert code == 0
    assert "docker/build-push-action" in out


def test_init_picks_gitlab_for_a_gitlab_remote(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "remote", "add", "origin", "git@gitlab.com:acme/web.git"], check=True
    )
    code, _, err = invoke(runner, "init")
    assert code == 0, err
    config = parse_config((tmp_path / "splitbuild.toml").read_text())
    assert config.ci.provider == "gitlab"
    assert config.image.names == ["registry.gitlab.com/acme/web"]
    assert invoke(runner, "generate")[0] == 0
    assert (tmp_path / ".gitlab-ci.yml").is_file()
    code, _, _ = invoke(runner, "init", "--force", "--ci", "forgejo", "--image", "docker.io/acme/web")
    assert code == 0
    assert parse_config((tmp_path / "splitbuild.toml").read_text()).ci.provider == "forgejo"


@pytest.mark.parametrize("provider", ["github", "gitlab", "forgejo"])
def test_starter_config_commented_lines_are_valid_for_each_provider(provider: str) -> None:
    from splitbuild.workflow import starter

    image = {"github": "ghcr.io/a/b", "gitlab": "registry.gitlab.com/a/b", "forgejo": "docker.io/a/b"}[
        provider
    ]
    text = starter.starter_config(image=image, dockerfile=None, platforms=["linux/amd64"], provider=provider)
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and ("=" in line or line.startswith("# [")) else line
        for line in text.splitlines()
    )
    uncommented = uncommented.replace(
        'platforms = ["linux/amd64"]', 'platforms = ["linux/ppc64le", "linux/riscv64", "linux/arm64"]'
    )
    uncommented = uncommented.replace('"splitbuild==<version>"', '"splitbuild==0.1.0"')
    config = parse_config(uncommented, provider=provider)
    assert config.ci.provider == provider
    # Each provider's starter offers exactly the signing it supports.
    assert (config.ci.sign, config.ci.attest) == {
        "github": ("cosign", True),
        "gitlab": ("cosign", False),
        "forgejo": (False, False),
    }[provider]
    the_plan = plan(config)  # no runner of another provider among the examples
    assert the_plan.provider == provider
    assert len(the_plan.legs) == 3
    # It renders a build job per platform and the merge job (GitLab signs in a job of its own).
    if provider == "gitlab":
        text = render_pipeline(config, the_plan, config_path="splitbuild.toml", output_path=".gitlab-ci.yml")
        jobs = {build_job_name(config, leg) for leg in the_plan.legs}
        jobs |= {merge_job_name(config), sign_job_name(config)}
        assert set(yaml.safe_load(text)) == jobs
    else:
        text = render_workflow(config, the_plan, config_path="splitbuild.toml", output_path="x.yml")
        jobs = {build_job_id(leg) for leg in the_plan.legs} | {"merge"}
        assert set(yaml.safe_load(text)["jobs"]) == jobs


def test_init_for_gitlab_names_cicd_variables_not_actions_secrets(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = invoke(runner, "init", "--ci", "gitlab", "--image", "registry.gitlab.com/acme/web")
    assert code == 0
    text = (tmp_path / "splitbuild.toml").read_text()
    assert "Actions secret" not in text
    assert "build secret id = CI/CD variable that holds it" in text


@pytest.mark.parametrize(
    ("files", "context", "dockerfile"),
    [
        (["app/Dockerfile"], "app", None),
        (["svc/api/Containerfile"], "svc/api", "svc/api/Containerfile"),
        (["Dockerfile", "app/Dockerfile"], ".", None),
    ],
)
def test_init_makes_the_dockerfile_directory_the_context(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: list[str],
    context: str,
    dockerfile: str | None,
) -> None:
    """A Dockerfile found in a subdirectory expects that directory as its build context: the
    starter must not pair ``dockerfile = "app/Dockerfile"`` with ``context = "."``."""
    project = tmp_path / "project"
    for name in files:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    code, _, _ = invoke(runner, "init", "--path", str(project / "splitbuild.toml"), "--image", "ghcr.io/a/b")
    assert code == 0
    config = parse_config((project / "splitbuild.toml").read_text())
    assert config.image.context == context
    assert config.image.dockerfile == dockerfile
