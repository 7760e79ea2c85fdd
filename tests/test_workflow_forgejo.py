"""The Forgejo/Gitea Actions workflow: the GitHub writer with provider ``forgejo``. Structural
checks of what those runners need (actions by full URL, runs-on labels from the config, no
artifacts, no GitHub OIDC or attestations, no GITHUB_TOKEN login to ghcr.io), that it is otherwise
the very same workflow, and the drift check of the reference workflows in ``workflows/``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitbuild.config import Config, load_config, parse_config
from splitbuild.errors import ConfigError
from splitbuild.planner import Plan, plan
from splitbuild.workflow.github import build_workflow, render_workflow
from splitbuild.workflow.pins import all_pins

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
EXAMPLES = ("portable",)

VARIANTS: dict[str, str] = {
    "defaults": """
[image]
names = ["docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
""",
    "own-runners-and-mirror": """
[image]
names = ["git.example.com/acme/app", "ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/s390x"]
[ci]
cache = "gha"
[ci.logins."git.example.com"]
username-var = "FORGEJO_USER"
password-secret = "FORGEJO_PACKAGES_TOKEN"
[ci.logins."ghcr.io"]
username-var = "GHCR_USER"
password-secret = "GHCR_PAT"
[runners]
"linux/arm64" = "ubuntu-24.04-arm"
[ci.forgejo]
actions-url = "https://data.forgejo.org/"
merge-runner = "docker"
[ci.forgejo.runners]
default = "docker"
"linux/arm64" = { labels = ["docker", "arm64-pi"], arch = "arm64" }
""",
}
ALL = [*VARIANTS, *EXAMPLES]


def load_case(name: str) -> Config:
    if name in VARIANTS:
        return parse_config(VARIANTS[name], f"{name}.toml", provider="forgejo")
    return load_config(REPO / "examples" / name / "splitbuild.toml", provider="forgejo")


def render(config: Config) -> str:
    return render_workflow(config, plan(config), config_path="splitbuild.toml", output_path="out.yml")


@pytest.fixture(params=ALL)
def case(request: pytest.FixtureRequest) -> tuple[Config, Plan, str, dict[str, Any]]:
    config = load_case(request.param)
    text = render(config)
    return config, plan(config), text, yaml.safe_load(text)


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_actions_are_referenced_by_full_url_and_pinned(
    case: tuple[Config, Plan, str, dict[str, Any]],
) -> None:
    config, _, text, _ = case
    base = re.escape(config.ci.forgejo.actions_url)
    pins = all_pins()
    lines = [line.strip() for line in text.splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert lines
    for line in lines:
        match = re.fullmatch(
            rf"(?:- )?uses: {base}/([\w.-]+/[\w.-]+)@([0-9a-f]{{40}}) # (v\d+\.\d+\.\d+)", line
        )
        assert match, line
        action, sha, tag = match.groups()
        assert (pins[action].sha, pins[action].tag) == (sha, tag)


def test_nothing_forgejo_runners_lack(case: tuple[Config, Plan, str, dict[str, Any]]) -> None:
    _, _, text, workflow = case
    for step in _steps(workflow):
        uses = step.get("uses", "")
        assert "upload-artifact" not in uses
        assert "download-artifact" not in uses
        assert "attest" not in uses
    for job in workflow["jobs"].values():
        assert set(job["permissions"]) <= {"contents"}
    assert "id-token" not in text
    assert "secrets.GITHUB_TOKEN" not in text
    assert "github.actor" not in text
    # each digest is the output of its own job: act (Forgejo's runner) merges no matrix outputs
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] == [job for job in workflow["jobs"] if job != "merge"]
    assert all("strategy" not in job for job in workflow["jobs"].values())
    for job in merge["needs"]:
        assert f"needs.{job}.outputs.digest" in yaml.safe_dump(merge)


def test_runs_on_comes_from_the_plan(case: tuple[Config, Plan, str, dict[str, Any]]) -> None:
    config, the_plan, _, workflow = case
    for leg in the_plan.legs:
        runner = workflow["jobs"][f"build-{leg.pair}"]["runs-on"]
        assert (runner if isinstance(runner, list) else [runner]) == list(leg.runner)
    runs_on = workflow["jobs"]["merge"]["runs-on"]
    assert (runs_on if isinstance(runs_on, list) else [runs_on]) == list(config.ci.merge_runner_labels)


def test_forgejo_defaults_and_its_own_runner_table() -> None:
    defaults = load_case("defaults")
    assert defaults.ci.cache == "registry"
    assert defaults.ci.merge_runner_labels == ("ubuntu-latest",)
    legs = {leg.platform: (leg.runner, leg.mode) for leg in plan(defaults).legs}
    assert legs == {
        "linux/amd64": (("ubuntu-latest",), "native"),
        "linux/arm64": (("ubuntu-latest",), "qemu"),
        "linux/arm/v7": (("ubuntu-latest",), "qemu"),
    }
    own = load_case("own-runners-and-mirror")
    assert own.ci.cache == "gha"
    legs = {leg.platform: (leg.runner, leg.mode) for leg in plan(own).legs}
    assert legs == {
        "linux/amd64": (("docker",), "native"),
        "linux/arm64": (("docker", "arm64-pi"), "native"),
        "linux/s390x": (("docker",), "native"),
    }
    assert own.ci.merge_runner_labels == ("docker",)
    text = render(own)
    assert "uses: https://data.forgejo.org/docker/build-push-action@" in text
    # [runners] (GitHub labels) is replaced by [ci.forgejo.runners] for Forgejo
    assert "ubuntu-24.04-arm" not in text


def test_it_is_the_github_workflow_apart_from_urls_runners_and_token_logins() -> None:
    config_path = REPO / "examples" / "portable" / "splitbuild.toml"
    github = build_workflow(load_config(config_path), plan(load_config(config_path))).to_data()
    forgejo_config = load_config(config_path, provider="forgejo")
    forgejo = build_workflow(forgejo_config, plan(forgejo_config)).to_data(action_url="https://github.com")

    def normalize(data: Any) -> Any:
        text = yaml.safe_dump(yaml.safe_load(_dump(data)))
        text = text.replace("https://github.com/", "")
        return re.sub(r"(runner|runs-on): .*", r"\1: X", text)

    assert normalize(github) == normalize(forgejo)


def _dump(data: Any) -> str:
    from splitbuild.workflow.yaml_dump import dump_yaml

    return dump_yaml(data)


def test_ghcr_needs_an_explicit_login_on_forgejo() -> None:
    with pytest.raises(ConfigError, match=r"no login for registry 'ghcr.io'"):
        parse_config('[image]\nnames = ["ghcr.io/a/b"]\nplatforms = ["linux/amd64"]\n', provider="forgejo")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[ci.forgejo]\nactions-url = "github.com"\n', "actions-url 'github.com' must be an http(s) URL"),
        ("[ci.forgejo]\nmerge-runner = []\n", "needs at least one non-empty runner label"),
        (
            '[ci.forgejo.runners]\n"linux/s390x" = "x"\n',
            "[ci.forgejo.runners] key 'linux/s390x' matches none",
        ),
    ],
)
def test_forgejo_keys_are_validated(toml: str, message: str) -> None:
    base = '[image]\nnames = ["docker.io/a/b"]\nplatforms = ["linux/amd64"]\n'
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(base + toml, provider="forgejo")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[ci]\nsign = "cosign"\n',
            "ci: sign = 'cosign' is not supported with provider 'forgejo': keyless cosign needs an OIDC",
        ),
        (
            "[ci]\nattest = true\n",
            "ci: attest = true is not supported with provider 'forgejo': it records a GitHub artifact",
        ),
    ],
)
def test_signing_is_refused_on_forgejo_naming_the_provider(toml: str, message: str) -> None:
    base = '[image]\nnames = ["docker.io/a/b"]\nplatforms = ["linux/amd64"]\n'
    with pytest.raises(ConfigError) as info:
        parse_config(base + toml, "splitbuild.toml", provider="forgejo")
    assert str(info.value).startswith("splitbuild.toml: " + message)
    assert "\n" not in str(info.value)
    github = parse_config(base + toml)
    assert github.ci.sign or github.ci.attest


def test_generate_for_forgejo_refuses_a_signed_config(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from splitbuild.cli.app import make_app

    config = tmp_path / "splitbuild.toml"
    config.write_text((REPO / "examples" / "signed" / "splitbuild.toml").read_text())
    output = tmp_path / "out.yml"
    result = CliRunner().invoke(
        make_app(), ["generate", "--ci", "forgejo", "--config", str(config), "--output", str(output)]
    )
    assert result.exit_code == 3
    assert "is not supported with provider 'forgejo'" in result.stderr
    assert not output.exists()


def test_github_schema_accepts_the_forgejo_workflows(tmp_path: Path) -> None:
    """Forgejo's workflow syntax is GitHub's (a subset); the output stays valid against it."""
    files = sorted(WORKFLOWS.glob("*.forgejo.yml"))
    for name in VARIANTS:
        path = tmp_path / f"{name}.forgejo.yml"
        path.write_text(render(load_case(name)))
        files.append(path)
    tool = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    )
    assert tool
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", EXAMPLES)
def test_reference_workflow_matches_generator(name: str) -> None:
    config_path = f"examples/{name}/splitbuild.toml"
    output_path = f"workflows/{name}.forgejo.yml"
    config = load_config(REPO / config_path, provider="forgejo")
    expected = render_workflow(
        config, plan(config), config_path=config_path, output_path=output_path, ci_flag=True
    )
    assert (REPO / output_path).read_text() == expected, f"regenerate with the command in {output_path}"


def test_every_reference_forgejo_workflow_has_an_example() -> None:
    for path in WORKFLOWS.glob("*.forgejo.yml"):
        name = path.name.removesuffix(".forgejo.yml")
        assert name in EXAMPLES, f"{path.name}: add {name} to EXAMPLES so it is drift-checked"
