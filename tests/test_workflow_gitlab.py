"""The generated GitLab pipeline: GitLab's own schema, structure (one build job per platform with
the planned runner tags, dotenv digest hand-off, a merge job that needs every build job), the
rules GitLab evaluates for each kind of pipeline, and the scripts themselves, run under ``sh``
with stub ``docker``/``buildah``/``splitbuild`` commands: what they log in to, build, push and
hand to the merge job. Plus the drift check of the reference pipelines in ``workflows/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitbuild.config import Config, LoginConfig, load_config, parse_config
from splitbuild.errors import ConfigError
from splitbuild.planner import Leg, Plan, plan
from splitbuild.workflow.gitlab import (
    build_job_name,
    build_pipeline,
    gitlab_merge_command,
    merge_job_name,
    preview_job_name,
    preview_stop_job_name,
    render_pipeline,
    sign_job_name,
)
from splitbuild.workflow.gitlab_scripts import DEFAULT_BINFMT_IMAGE, logins
from splitbuild.workflow.install_lock import requirements_text
from splitbuild.workflow.merge_step import merge_argv
from tests.gitlab_support import Run, evaluate, job_variables, run_job

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
EXAMPLES = ("portable", "gitlab-buildah")

VARIANTS: dict[str, str] = {
    "hosted": """
[image]
names = ["registry.gitlab.com/acme/app", "docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"]
context = "app"
dockerfile = "app/Containerfile"
target = "release"
annotations = ["index:org.opencontainers.image.description=App"]
[image.build-args]
GREETING = "it's $HOME and \\"quoted\\" `not run`"
PLAIN = "1.0"
[image.build-contexts]
base = "docker-image://alpine:3.20"
[image.secrets]
npm = "NPM_TOKEN"
[image.labels]
"org.opencontainers.image.source" = "https://example.invalid/acme/app"
"org.opencontainers.image.title" = "App $NAME"
[tags]
rules = ["type=ref,event=branch", "type=semver,pattern={{version}}"]
flavor = ["latest=auto"]
labels = ["org.opencontainers.image.vendor=Acme"]
[ci]
branches = ["main", "release/*"]
tags = ["v*"]
schedule = ["0 4 * * 1"]
binfmt-image = "tonistiigi/binfmt:qemu-v10.0.4"
qemu-timeout-minutes = 240
provenance = "max"
sbom = true
""",
    "minimal": """
[image]
names = ["registry.gitlab.com/acme/one"]
platforms = ["linux/amd64"]
""",
    "buildah": """
[image]
names = ["registry.example.com/team/app", "quay.io/team/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]
[image.build-args]
MODE = "fast"
[ci.logins."quay.io"]
username = "team+ci"
password-secret = "QUAY_TOKEN"
[ci.gitlab]
builder = "buildah"
ci-registry = "registry.example.com"
buildah-image = "registry.example.com/mirror/buildah:v1.43"
[ci.gitlab.runners]
default = ["docker", "amd64"]
"linux/arm64" = ["docker", "aarch64"]
""",
    "no-merge-requests": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[ci]
name = "images"
pull-requests = false
workflow-dispatch = false
cache = "none"
provenance = false
python-version = "pypy3.11"
[ci.gitlab]
dind-mtu = 0
docker-image = "$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/docker:29-cli"
dind-image = "$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/docker:29-dind"
merge-runner = "saas-linux-medium-amd64"
build-stage = "images"
merge-stage = "publish"
""",
    "merge-requests-only": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[ci]
branches = []
tags = []
workflow-dispatch = false
""",
    "exclusions": """
[image]
names = ["docker.io/acme/app"]
platforms = ["linux/amd64"]
[ci]
branches = ["main", "release/**", "!release/**-rc*"]
tags = ["v[0-9]+.*", "!v*-beta"]
[ci.logins."docker.io"]
username-secret = "HUB_USER"
password-secret = "HUB_TOKEN"
""",
    "web-branches": """
[image]
names = ["127.0.0.1:5000/acme/app"]
platforms = ["linux/amd64"]
[ci.gitlab]
web-branches = ["release/*"]
insecure-registries = ["127.0.0.1:5000", "registry.internal"]
[ci.logins."127.0.0.1:5000"]
username-var = "REG_USER"
password-secret = "REG_PASSWORD"
""",
    "previews": """
[image]
names = ["registry.gitlab.com/acme/app", "docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[ci]
previews = true
[ci.gitlab]
builder = "buildah"
""",
    "optional": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]
optional-platforms = ["linux/riscv64"]
[ci.gitlab]
builder = "buildah"
""",
    "signed": """
[image]
names = ["registry.gitlab.com/acme/app", "docker.io/acme/app", "quay.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[ci]
provenance = "max"
sbom = true
sign = "cosign"
[ci.logins."quay.io"]
username = "acme+ci"
password-secret = "QUAY_TOKEN"
[ci.gitlab]
cosign-image = "registry.example.com/mirror/cosign-shell:v2"
""",
}
ALL = [*VARIANTS, *EXAMPLES]

CI_ENV = {
    "CI_PROJECT_URL": "https://gitlab.example.com/acme/app",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": "job-token-not-for-logs",
    "DOCKERHUB_USERNAME": "acme",
    "DOCKERHUB_TOKEN": "hub-token-not-for-logs",
    "HUB_USER": "acme-hub",
    "HUB_TOKEN": "hub2-token-not-for-logs",
    "QUAY_USERNAME": "acme+quay",
    "QUAY_PASSWORD": "quay-password-not-for-logs",
    "QUAY_TOKEN": "quay-token-not-for-logs",
    "NPM_TOKEN": "npm-token-not-for-logs",
    "REG_USER": "reg-user",
    "REG_PASSWORD": "reg-password-not-for-logs",
}
SECRETS = [v for k, v in CI_ENV.items() if "TOKEN" in k or "PASSWORD" in k]
# A merge request from a fork (its source project is another one): never pushes, previews or not,
# whether its pipeline runs in the target project (FORK) or, GitLab's default, in the fork itself.
FORK = {
    "CI_PROJECT_ID": "100",
    "CI_MERGE_REQUEST_PROJECT_ID": "100",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "200",
}
FORK_PIPELINE = {
    "CI_PROJECT_ID": "200",
    "CI_MERGE_REQUEST_PROJECT_ID": "100",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "200",
}
SAME_PROJECT = {
    "CI_PROJECT_ID": "100",
    "CI_MERGE_REQUEST_PROJECT_ID": "100",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "100",
}
MERGE_REQUEST = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    **FORK,
}
PUSH_MAIN = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}


def load_case(name: str) -> Config:
    if name in VARIANTS:
        return parse_config(VARIANTS[name], f"{name}.toml", provider="gitlab")
    return load_config(REPO / "examples" / name / "splitbuild.toml", provider="gitlab")


def render(config: Config, output_path: str = ".gitlab-ci.yml") -> str:
    return render_pipeline(config, plan(config), config_path="splitbuild.toml", output_path=output_path)


def parsed(config: Config) -> dict[str, Any]:
    data = yaml.safe_load(render(config))
    assert isinstance(data, dict)
    return data


def _case(name: str) -> tuple[Config, Plan, dict[str, Any]]:
    config = load_case(name)
    return config, plan(config), parsed(config)


@pytest.fixture(params=ALL)
def case(request: pytest.FixtureRequest) -> tuple[Config, Plan, dict[str, Any]]:
    return _case(request.param)


# Configs whose pipeline publishes (has a merge job), and those that build merge requests.
PUBLISHING = [name for name in ALL if merge_job_name(load_case(name)) in parsed(load_case(name))]
MERGE_REQUESTS = [name for name in ALL if load_case(name).ci.pull_requests]


@pytest.fixture(params=PUBLISHING)
def publishing(request: pytest.FixtureRequest) -> tuple[Config, Plan, dict[str, Any]]:
    return _case(request.param)


@pytest.fixture(params=MERGE_REQUESTS)
def merge_requests(request: pytest.FixtureRequest) -> tuple[Config, Plan, dict[str, Any]]:
    return _case(request.param)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed"
    return found


# --- schema and structure ---------------------------------------------------------------------


def test_gitlab_schema_accepts_every_pipeline(tmp_path: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.gitlab-ci.yml"))
    assert {p.name.removesuffix(".gitlab-ci.yml") for p in files} >= set(EXAMPLES)
    for name in VARIANTS:
        path = tmp_path / f"{name}.gitlab-ci.yml"
        path.write_text(render(load_case(name)))
        files.append(path)
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_gitlab_schema_rejects_what_it_should(tmp_path: Path) -> None:
    """Guards the guard: the schema is GitLab's, not an accept-anything stand-in."""
    bad = tmp_path / "bad.gitlab-ci.yml"
    bad.write_text("build:\n  script: [echo]\n  timeout: 5\n  interruptible: maybe\n")
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(bad)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0


def test_one_build_job_per_platform_on_the_planned_runner(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    config, the_plan, pipeline = case
    builds = [build_job_name(config, leg) for leg in the_plan.legs]
    merge = [merge_job_name(config)] if merge_job_name(config) in pipeline else []
    sign = [sign_job_name(config)] if merge and config.ci.sign else []
    previews = [preview_job_name(config), preview_stop_job_name(config)] if config.ci.previews else []
    assert list(pipeline) == builds + merge + sign + previews
    for leg in the_plan.legs:
        job = pipeline[build_job_name(config, leg)]
        assert job["tags"] == list(leg.runner)
        assert job["stage"] == config.ci.gitlab.build_stage
        assert job["inherit"] == {"default": False}
        assert "needs" not in job
        minutes = config.ci.qemu_timeout_minutes if leg.mode == "qemu" else config.ci.timeout_minutes
        assert job["timeout"] == f"{minutes} minutes"
        assert job["interruptible"] is False
        assert job["retry"] == {
            "max": 1,
            "when": ["runner_system_failure", "api_failure", "scheduler_failure"],
        }
        assert job_variables(job)["SPLITBUILD_PLATFORM"] == leg.platform
        assert job_variables(job)["SPLITBUILD_PUSH"] == "false"


def test_gitlab_com_defaults_pin_each_platform_to_a_hosted_runner() -> None:
    config = load_case("hosted")
    tags = {leg.platform: (leg.runner, leg.mode) for leg in plan(config).legs}
    assert tags == {
        "linux/amd64": (("saas-linux-small-amd64",), "native"),
        "linux/arm64": (("saas-linux-small-arm64",), "native"),
        "linux/arm/v7": (("saas-linux-small-arm64",), "native"),
        "linux/s390x": (("saas-linux-small-amd64",), "qemu"),
    }
    assert config.ci.merge_runner_labels == ("saas-linux-small-amd64",)


def test_builder_image_and_docker_in_docker(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    config, the_plan, pipeline = case
    gitlab = config.ci.gitlab
    for leg in the_plan.legs:
        job = pipeline[build_job_name(config, leg)]
        variables = job_variables(job)
        if gitlab.builder == "buildah":
            assert job["image"] == gitlab.buildah_image
            assert "services" not in job
            assert variables["STORAGE_DRIVER"] == "vfs"
            assert variables["BUILDAH_ISOLATION"] == "chroot"
            continue
        assert job["image"] == gitlab.docker_image
        (service,) = job["services"]
        assert service["name"] == gitlab.dind_image
        assert service["alias"] == "docker"
        command = [f"--mtu={gitlab.dind_mtu}"] if gitlab.dind_mtu else []
        command += [f"--insecure-registry={host}" for host in gitlab.insecure_registries]
        assert service.get("command") == (command or None)
        assert variables["DOCKER_HOST"] == "tcp://docker:2376"
        assert variables["DOCKER_TLS_CERTDIR"] == "/certs"


def test_images_may_use_gitlab_variables() -> None:
    """A dependency-proxy prefix in an image is GitLab's to expand, so it is written as given."""
    config = load_case("no-merge-requests")
    job = parsed(config)[build_job_name(config, plan(config).legs[0])]
    assert job["image"] == "$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/docker:29-cli"
    assert job["services"][0] == {
        "name": "$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/docker:29-dind",
        "alias": "docker",
    }
    merge = parsed(config)[merge_job_name(config)]
    assert merge["image"] == "pypy:3.11-slim"
    assert merge["tags"] == ["saas-linux-medium-amd64"]
    assert (merge["stage"], job["stage"]) == ("publish", "images")


def test_dotenv_hands_each_digest_to_a_merge_job_that_needs_every_build(
    publishing: tuple[Config, Plan, dict[str, Any]],
) -> None:
    config, the_plan, pipeline = publishing
    command = gitlab_merge_command(config, the_plan)
    merge = pipeline[merge_job_name(config)]
    assert merge["needs"] == [
        {"job": build_job_name(config, leg), "artifacts": True} for leg in the_plan.legs
    ]
    merge_text = "\n".join(merge["script"])
    for leg in the_plan.legs:
        job = pipeline[build_job_name(config, leg)]
        dotenv = f"splitbuild-{leg.pair}.env"
        assert job["artifacts"] == {"reports": {"dotenv": dotenv}, "expire_in": "1 week"}
        variable = command.digest_env[leg.platform]
        assert variable == "SPLITBUILD_DIGEST_" + re.sub(r"[^A-Z0-9]", "_", leg.platform.upper())
        assert f"printf '{variable}=%s\\n' \"$digest\" > {dotenv}" in "\n".join(job["script"])
        check = f'"${{{variable}:?the {leg.platform} build job produced no digest}}"'
        if leg.platform in config.image.optional_platforms:  # may be missing: no check, no word
            assert check not in merge_text
            assert f'${{{variable}:+"${variable}"}}' in merge_text
        else:
            assert check in merge_text
        assert variable not in merge.get("variables", {})
    assert merge["artifacts"]["reports"] == {"dotenv": "splitbuild-merge.env"}
    assert merge["interruptible"] is False
    assert merge["resource_group"].endswith("-merge-$CI_COMMIT_REF_SLUG")
    assert job_variables(merge)["GIT_STRATEGY"] == "none"


def test_only_one_value_per_variable_and_all_prefixed(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    _, _, pipeline = case
    allowed = {"DOCKER_HOST", "DOCKER_TLS_CERTDIR", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "GIT_STRATEGY"}
    allowed |= {"STORAGE_DRIVER", "BUILDAH_ISOLATION", "BUILDAH_FORMAT"}
    for job in pipeline.values():
        for name in job["variables"]:
            assert name.startswith("SPLITBUILD_") or name in allowed, name


def test_no_merge_job_without_a_publishing_trigger() -> None:
    assert set(ALL) - set(PUBLISHING) == {"merge-requests-only"}
    assert set(ALL) - set(MERGE_REQUESTS) == {"no-merge-requests"}
    config = load_case("merge-requests-only")
    pipeline = parsed(config)
    assert merge_job_name(config) not in pipeline
    assert "No publishing trigger" in render(config)


def test_file_has_no_global_keys_so_it_can_be_included(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    _, _, pipeline = case
    reserved = {"stages", "workflow", "default", "variables", "include", "image", "services", "cache"}
    assert not reserved & set(pipeline)


# --- rules: which pipelines run which jobs ------------------------------------------------------


def _pipeline(source: str, **env: str) -> dict[str, str]:
    return {"CI_PIPELINE_SOURCE": source, **env}


def _mr(target: str, project: dict[str, str] = FORK) -> dict[str, str]:
    return _pipeline("merge_request_event", CI_MERGE_REQUEST_TARGET_BRANCH_NAME=target, **project)


def _branch(name: str) -> dict[str, str]:
    return _pipeline("push", CI_COMMIT_BRANCH=name)


def _tag(name: str) -> dict[str, str]:
    return _pipeline("push", CI_COMMIT_TAG=name)


def _web(branch: str) -> dict[str, str]:
    return _pipeline("web", CI_COMMIT_BRANCH=branch, CI_DEFAULT_BRANCH="main")


# (variant, pipeline, build jobs run, they push, merge job runs)
RULE_CASES: list[tuple[str, dict[str, str], bool, bool, bool]] = [
    ("hosted", _mr("main"), True, False, False),
    ("hosted", _mr("release/2.0"), True, False, False),
    ("hosted", _mr("feature"), False, False, False),
    ("hosted", _branch("main"), True, True, True),
    ("hosted", _branch("release/2.0"), True, True, True),
    ("hosted", _branch("release/2.0/hotfix"), False, False, False),
    ("hosted", _branch("feature"), False, False, False),
    ("hosted", _tag("v1.2.3"), True, True, True),
    ("hosted", _tag("1.2.3"), False, False, False),
    ("hosted", _web("main"), True, True, True),
    # a "Run pipeline" elsewhere adds no job: a branch named latest must not publish :latest
    ("hosted", _web("latest"), False, False, False),
    ("hosted", _pipeline("web", CI_COMMIT_TAG="v1.0.0", CI_DEFAULT_BRANCH="main"), False, False, False),
    ("web-branches", _web("release/1"), True, True, True),
    ("web-branches", _web("main"), True, True, True),
    ("web-branches", _web("latest"), False, False, False),
    ("hosted", _pipeline("schedule", CI_COMMIT_BRANCH="main"), True, True, True),
    ("hosted", _pipeline("api", CI_COMMIT_BRANCH="main"), False, False, False),
    ("exclusions", _branch("release/1.0"), True, True, True),
    ("exclusions", _branch("release/a/b"), True, True, True),
    ("exclusions", _branch("release/1.0-rc1"), False, False, False),
    ("exclusions", _mr("release/1.0-rc1"), False, False, False),
    ("exclusions", _mr("release/1.0"), True, False, False),
    ("exclusions", _tag("v10.1"), True, True, True),
    ("exclusions", _tag("v1.0-beta"), False, False, False),
    ("exclusions", _tag("va.1"), False, False, False),
    ("exclusions", _pipeline("schedule", CI_COMMIT_BRANCH="main"), False, False, False),
    ("merge-requests-only", _mr("anything"), True, False, False),
    ("merge-requests-only", _branch("main"), False, False, False),
    ("no-merge-requests", _mr("main"), False, False, False),
    ("no-merge-requests", _pipeline("web", CI_COMMIT_BRANCH="main"), False, False, False),
    ("no-merge-requests", _tag("v1"), True, True, True),
]


@pytest.mark.parametrize(("variant", "env", "builds", "pushes", "merges"), RULE_CASES)
def test_rules_decide_per_pipeline(
    variant: str, env: dict[str, str], builds: bool, pushes: bool, merges: bool
) -> None:
    config = load_case(variant)
    pipeline = parsed(config)
    for leg in plan(config).legs:
        decision = evaluate(pipeline[build_job_name(config, leg)], env)
        assert decision.runs is builds
        if builds:
            variables = {**job_variables(pipeline[build_job_name(config, leg)]), **decision.variables}
            assert variables["SPLITBUILD_PUSH"] == ("true" if pushes else "false")
            assert decision.interruptible is (env["CI_PIPELINE_SOURCE"] == "merge_request_event")
    merge = pipeline.get(merge_job_name(config))
    assert (merge is not None and evaluate(merge, env).runs) is merges


def test_merge_runs_exactly_when_builds_publish(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    """The merge job's needs must exist in every pipeline it runs in, and it must run whenever
    the builds push."""
    config, the_plan, pipeline = case
    envs = [env for _, env, *_ in RULE_CASES] + [_branch(b) for b in config.ci.branches if "*" not in b]
    envs += [_mr(b, SAME_PROJECT) for b in config.ci.branches if "*" not in b] + [_mr("main", SAME_PROJECT)]
    merge = pipeline.get(merge_job_name(config))
    preview = pipeline.get(preview_job_name(config))
    for env in envs:
        build = evaluate(pipeline[build_job_name(config, the_plan.legs[0])], env)
        pushes = build.runs and build.variables.get("SPLITBUILD_PUSH") == "true"
        merges = merge is not None and evaluate(merge, env).runs
        previews = preview is not None and evaluate(preview, env).runs
        assert merges + previews == pushes  # exactly one of them when the builds push
        assert previews is (pushes and env["CI_PIPELINE_SOURCE"] == "merge_request_event")


# --- the scripts, run ---------------------------------------------------------------------------


def test_scripts_pass_shellcheck_as_posix_sh(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    _, _, pipeline = case
    for name, job in pipeline.items():
        script = "\n".join(job["script"]) + "\n"
        result = subprocess.run(
            [_tool("shellcheck"), "--shell=sh", "--severity=style", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{name}:\n{result.stdout}"


def test_scripts_read_config_values_only_from_variables(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    config, _, pipeline = case
    text = render(config)
    for value in [*config.image.build_args.values(), *config.image.labels.values(), *config.tags.rules]:
        for job in pipeline.values():
            assert value not in "\n".join(job["script"])
    assert "--password " not in text
    assert " -p " not in text


def _digest(index: int) -> str:
    return "sha256:" + f"{index:x}" * 64


def _login_expectations(config: Config) -> list[tuple[str, str, str]]:
    """(registry, user name, password) of every login, from CI_ENV."""
    out = []
    for login in logins(config):
        user = login.username.strip('"$')
        password = login.password.strip('"$')
        username = login.variables.get(user, CI_ENV.get(user, ""))
        out.append((login.registry, username, CI_ENV[password]))
    return out


def _expected_build_args(config: Config, leg: Leg) -> list[str]:
    image = config.image
    args = ["--platform", leg.platform]
    if image.dockerfile:
        args += ["--file", image.dockerfile]
    if image.target:
        args += ["--target", image.target]
    for key, value in image.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in image.build_contexts.items():
        args += ["--build-context", f"{key}={value}"]
    for key, value in image.secrets.items():
        args += ["--secret", f"id={key},env={value}"]
    defaults = {
        "org.opencontainers.image.source": CI_ENV["CI_PROJECT_URL"],
        "org.opencontainers.image.revision": CI_ENV["CI_COMMIT_SHA"],
    }
    for key, value in defaults.items():
        if key not in image.labels:
            args += ["--label", f"{key}={value}"]
    for key, value in image.labels.items():
        args += ["--label", f"{key}={value}"]
    return args


def _check_build_call(config: Config, leg: Leg, run: Run, *, push: bool) -> None:
    (build,) = [
        c
        for c in run.calls
        if (c["tool"], c["args"][:2]) == ("docker", ["buildx", "build"])
        or (c["tool"], c["args"][:1]) == ("buildah", ["build"])
    ]
    args = build["args"][2:] if build["tool"] == "docker" else build["args"][1:]
    expected = _expected_build_args(config, leg)
    assert args[: len(expected)] == expected
    rest = args[len(expected) :]
    first = config.image.names[0]
    if build["tool"] == "docker":
        provenance = config.ci.provenance
        tail = ["--provenance", "false" if provenance is False else f"mode={provenance}"]
        tail += ["--sbom", "true"] if config.ci.sbom else []
        if config.ci.cache == "registry":
            ref = f"type=registry,ref={first}:buildcache-{leg.pair}"
            tail += ["--cache-from", ref]
            tail += ["--cache-to", f"{ref},mode={config.ci.cache_mode},ignore-error=true"] if push else []
        names = ",".join(config.image.names)
        attestations = provenance is not False or config.ci.sbom
        options = "oci-mediatypes=true" + (",oci-artifact=true" if attestations else "")
        output = (
            f'type=image,"name={names}",{options},push-by-digest=true,name-canonical=true,'
            f"push={str(push).lower()}"
        )
        tail += ["--output", output, "--metadata-file", "splitbuild-metadata.json", image_context(config)]
    else:
        tail = []
        if config.ci.cache == "registry":
            tail += ["--layers", "--cache-from", f"{first}/buildcache"]
            tail += ["--cache-to", f"{first}/buildcache"] if push else []
        tail += ["--iidfile", f"{job_dir(run)}/image-id", "--tag", local_image(run)]
        tail.append(image_context(config))
    assert rest == tail


def image_context(config: Config) -> str:
    return config.image.context


def job_dir(run: Run) -> str:
    """The job's private directory (the one its build wrote the image id to)."""
    (build,) = [c for c in run.tool("buildah") if c["args"][:1] == ["build"]]
    path = build["args"][build["args"].index("--iidfile") + 1]
    assert path.endswith("/image-id")
    return path.removesuffix("/image-id")


def local_image(run: Run) -> str:
    (build,) = [c for c in run.tool("buildah") if c["args"][:1] == ["build"]]
    return str(build["args"][build["args"].index("--tag") + 1])


def _assert_locked_install(run: Run, config: Config) -> None:
    """The job installed as the GitHub merge job does: into a venv of its own (removed when the job
    ended), the hash-locked closure, then ``[ci] install`` without dependencies, then ``pip check``."""
    calls = run.tool("pip")
    assert len(calls) == 3, calls
    python = calls[0]["args"][1]
    venv = Path(python).parent.parent
    common = ["--python", python, "--disable-pip-version-check", "--no-input"]
    assert python == f"{venv}/bin/python"
    assert venv.name.startswith("splitbuild-venv.")
    assert [call["args"][: len(common)] for call in calls] == [common] * 3
    lock, install, check = (call["args"][len(common) :] for call in calls)
    assert lock == [
        "install",
        "--no-compile",
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "-r",
        f"{venv}/lock.txt",
    ]
    assert install == ["install", "--no-compile", "--no-deps", "-r", f"{venv}/install.txt"]
    assert check == ["check"]
    assert [call["files"] for call in calls] == [
        [requirements_text() + "\n"],
        [config.ci.install + "\n"],
        [],
    ]
    assert not venv.exists(), "the job's venv outlived it"


def _run_build(
    config: Config, pipeline: dict[str, Any], leg: Leg, env: dict[str, str], tmp_path: Path, digest: str
) -> Run:
    job = pipeline[build_job_name(config, leg)]
    decision = evaluate(job, env)
    assert decision.runs
    workdir = tmp_path / leg.pair
    workdir.mkdir(parents=True)
    return run_job(job, workdir, {**CI_ENV, **env, **decision.variables, "STUB_DIGEST": digest})


def test_merge_request_builds_every_platform_without_login_or_push(
    merge_requests: tuple[Config, Plan, dict[str, Any]], tmp_path: Path
) -> None:
    config, the_plan, pipeline = merge_requests
    env = {**MERGE_REQUEST, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": (config.ci.branches or ["main"])[0]}
    for index, leg in enumerate(the_plan.legs, start=1):
        run = _run_build(config, pipeline, leg, env, tmp_path, _digest(index))
        assert run.returncode == 0, run.stderr
        assert [c for c in run.calls if c["args"][:1] == ["push"]] == []
        _check_build_call(config, leg, run, push=False)
        for secret in SECRETS:
            assert all(secret not in " ".join(c["args"]) for c in run.calls)


def test_merge_request_logs_in_for_pulls_when_credentials_reach_it(
    merge_requests: tuple[Config, Plan, dict[str, Any]], tmp_path: Path
) -> None:
    """A private base image must pull on merge requests too: the job logs in to every registry
    whose variables are set, before it builds, and still pushes nothing; without them it skips
    the login instead of failing (protected variables do not reach unprotected branches)."""
    config, the_plan, pipeline = merge_requests
    env = {**MERGE_REQUEST, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": (config.ci.branches or ["main"])[0]}
    leg = the_plan.legs[0]
    tool = "buildah" if config.ci.gitlab.builder == "buildah" else "docker"
    run = _run_build(config, pipeline, leg, env, tmp_path / "with", _digest(1))
    assert run.returncode == 0, run.stderr
    calls = [c for c in run.tool(tool) if c["args"][0] == "login"]
    logins_done = [(c["args"][-1], c["args"][-3], c["stdin"]) for c in calls]
    assert logins_done == _login_expectations(config)
    order = [c["args"][0] for c in run.tool(tool) if c["args"][0] in ("login", "build", "buildx")]
    assert order.index("build" if tool == "buildah" else "buildx") == len(logins_done)
    assert [c for c in run.calls if c["args"][:1] == ["push"]] == []
    job = pipeline[build_job_name(config, leg)]
    names = {n for login in logins(config) for n in login.names}
    bare = {k: v for k, v in {**CI_ENV, **env}.items() if k not in names}
    workdir = tmp_path / "without"
    workdir.mkdir()
    run = run_job(job, workdir, {**bare, **evaluate(job, env).variables, "STUB_DIGEST": _digest(2)})
    assert run.returncode == 0, run.stderr
    assert [c for c in run.tool(tool) if c["args"][0] == "login"] == []


@pytest.mark.parametrize("fail", [None, "build", "push"])
@pytest.mark.parametrize("name", ["buildah", "hosted"])
def test_build_job_removes_its_credentials_and_local_image_at_the_end(
    name: str, fail: str | None, tmp_path: Path
) -> None:
    """The login goes to a per-job auth file (REGISTRY_AUTH_FILE / DOCKER_CONFIG) in a private
    temporary directory, which is gone when the job ends, failed or not; nothing lands in the
    runner's HOME; buildah builds under a local name no other job uses and removes it."""
    config = load_case(name)
    pipeline = parsed(config)
    leg = plan(config).legs[0]
    tool = "buildah" if name == "buildah" else "docker"
    stub_fail = {"build": "build" if tool == "buildah" else "buildx", "push": "push"}.get(fail or "", "")
    job = pipeline[build_job_name(config, leg)]
    env = {**CI_ENV, **PUSH_MAIN, **evaluate(job, PUSH_MAIN).variables, "STUB_DIGEST": _digest(1)}
    env |= {"CI_JOB_ID": "4242", "STUB_FAIL": stub_fail, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    workdir = tmp_path / "job"
    workdir.mkdir()
    run = run_job(job, workdir, env)
    assert (run.returncode == 0) is (fail is None or (fail == "push" and tool == "docker")), run.stderr
    logins_done = [c for c in run.tool(tool) if c["args"][0] == "login"]
    assert len(logins_done) == len(logins(config)) > 0
    written = {c["auth_file"] if tool == "buildah" else c["docker_config"] for c in logins_done}
    (private,) = written
    assert private is not None
    assert private.startswith(str(tmp_path / "tmp" / "splitbuild."))
    assert list((tmp_path / "tmp").iterdir()) == []  # the job's directory, credentials and all
    assert not (workdir / ".docker").exists()
    assert not (workdir / ".config").exists()
    if tool == "buildah":
        (build,) = [c for c in run.tool("buildah") if c["args"][0] == "build"]
        image = build["args"][build["args"].index("--tag") + 1]
        assert image.startswith("localhost/splitbuild-4242-")
        assert [c["args"] for c in run.tool("buildah") if c["args"][0] == "rmi"] == [["rmi", image]]


def test_publishing_build_logs_in_pushes_and_writes_its_digest(
    publishing: tuple[Config, Plan, dict[str, Any]], tmp_path: Path
) -> None:
    config, the_plan, pipeline = publishing
    env = _publishing_env(config)
    command = gitlab_merge_command(config, the_plan)
    buildah = config.ci.gitlab.builder == "buildah"
    for index, leg in enumerate(the_plan.legs, start=1):
        run = _run_build(config, pipeline, leg, env, tmp_path, _digest(index))
        assert run.returncode == 0, run.stderr
        tool = "buildah" if buildah else "docker"
        login_calls = [c for c in run.tool(tool) if c["args"][:1] == ["login"]]
        expected_logins = _login_expectations(config)
        assert [(c["args"][-1], c["args"][-3], c["stdin"]) for c in login_calls] == expected_logins
        assert all(c["args"][-2] == "--password-stdin" for c in login_calls)
        insecure = config.ci.gitlab.insecure_registries
        for call in login_calls:  # buildah is told; docker's daemon has --insecure-registry
            assert ("--tls-verify=false" in call["args"]) is (buildah and call["args"][-1] in insecure)
        _check_build_call(config, leg, run, push=True)
        if buildah:
            (push,) = [c for c in run.calls if c["args"][:1] == ["push"]]
            (inspect,) = [c for c in run.calls if c["args"][:1] == ["inspect"]]
            image_id = "sha256:" + "e" * 64  # what the build wrote to --iidfile
            inspect_args = ["inspect", "--type", "image", "--format", "{{.FromImageDigest}}", image_id]
            assert inspect["args"] == inspect_args
            # by digest, no tag: nothing is left to clean up in the registry
            by_digest = f"docker://{config.image.names[0]}@{_digest(index)}"
            assert push["args"] == ["push", "--disable-compression", image_id, by_digest]
        else:
            tools = [c["args"][:2] for c in run.calls]
            create = tools.index(["buildx", "create"])
            qemu = [i for i, c in enumerate(run.calls) if c["args"][:1] == ["run"]]
            if leg.mode == "qemu":
                (at,) = qemu
                assert at < create
                binfmt = config.ci.binfmt_image or DEFAULT_BINFMT_IMAGE
                assert run.calls[at]["args"] == [
                    "run",
                    "--privileged",
                    "--rm",
                    binfmt,
                    "--install",
                    leg.qemu_arch,
                ]
            else:
                assert qemu == []
        dotenv = (run.workdir / f"splitbuild-{leg.pair}.env").read_text()
        assert dotenv == f"{command.digest_env[leg.platform]}={_digest(index)}\n"


def _publishing_env(config: Config) -> dict[str, str]:
    pipeline = parsed(config)
    for env in (PUSH_MAIN, _tag("v1.0.0"), _web("main")):
        if evaluate(pipeline[merge_job_name(config)], env).runs:
            return env
    raise AssertionError("no publishing pipeline found for this config")


def test_build_fails_when_no_digest_comes_back(tmp_path: Path) -> None:
    for name in ("hosted", "buildah"):
        config = load_case(name)
        pipeline = parsed(config)
        leg = plan(config).legs[0]
        run = _run_build(config, pipeline, leg, PUSH_MAIN, tmp_path / name, "")
        assert run.returncode != 0
        assert f"gave no image digest for {leg.platform}" in run.stderr
        assert not (run.workdir / f"splitbuild-{leg.pair}.env").exists()


def test_missing_credential_variable_stops_the_login_with_its_name(tmp_path: Path) -> None:
    config = load_case("hosted")
    pipeline = parsed(config)
    env = {**CI_ENV, **PUSH_MAIN, "SPLITBUILD_PUSH": "true", "DOCKERHUB_TOKEN": "", "STUB_DIGEST": _digest(1)}
    run = run_job(pipeline[build_job_name(config, plan(config).legs[0])], tmp_path, env)
    assert run.returncode != 0
    assert "DOCKERHUB_TOKEN: is empty: define the CI/CD variable DOCKERHUB_TOKEN" in run.stderr
    assert not any(c["args"][:2] == ["buildx", "build"] for c in run.calls)


def test_digests_travel_from_build_jobs_to_the_merge_command(
    publishing: tuple[Config, Plan, dict[str, Any]], tmp_path: Path
) -> None:
    """End to end through the dotenv files: every build job's report becomes the merge job's
    environment, and the merge job runs exactly the command the GitHub workflow runs (plus
    --json) with GitLab's credentials handed over as SPLITBUILD_AUTH_* variables."""
    config, the_plan, pipeline = publishing
    env = _publishing_env(config)
    dotenv: dict[str, str] = {}
    digests: dict[str, str] = {}
    for index, leg in enumerate(the_plan.legs, start=1):
        run = _run_build(config, pipeline, leg, env, tmp_path, _digest(index))
        assert run.returncode == 0, run.stderr
        for line in (run.workdir / f"splitbuild-{leg.pair}.env").read_text().splitlines():
            key, _, value = line.partition("=")
            dotenv[key] = value
        digests[leg.platform] = _digest(index)
    merge = pipeline[merge_job_name(config)]
    workdir = tmp_path / "merge"
    workdir.mkdir()
    index_digest = "sha256:" + "f0" * 32
    run = run_job(merge, workdir, {**CI_ENV, **env, **dotenv, "STUB_INDEX_DIGEST": index_digest})
    assert run.returncode == 0, run.stderr
    _assert_locked_install(run, config)
    (call,) = run.tool("splitbuild")
    expected = merge_argv(config, digests, the_plan)
    insecure = [w for host in config.ci.gitlab.insecure_registries for w in ("--insecure-registry", host)]
    assert call["args"] == ["merge", "--json", *insecure, *expected[2:]]
    auth = {}
    for registry, username, password in _login_expectations(config):
        prefix = "SPLITBUILD_AUTH_" + re.sub(r"[^A-Z0-9]", "_", registry.upper())
        auth[f"{prefix}_USERNAME"] = username
        auth[f"{prefix}_PASSWORD"] = password
    assert call["auth"] == auth
    left_out = "SPLITBUILD_LEFT_OUT=\n" if config.image.optional_platforms else ""
    assert (workdir / "splitbuild-merge.env").read_text() == f"SPLITBUILD_DIGEST={index_digest}\n{left_out}"
    assert index_digest in run.stdout


def test_merge_stops_with_the_platform_whose_digest_is_missing(tmp_path: Path) -> None:
    config = load_case("hosted")
    merge = parsed(config)[merge_job_name(config)]
    legs = plan(config).legs
    dotenv = {
        gitlab_merge_command(config, plan(config)).digest_env[leg.platform]: _digest(1) for leg in legs[1:]
    }
    run = run_job(merge, tmp_path, {**CI_ENV, **PUSH_MAIN, **dotenv, "STUB_INDEX_DIGEST": _digest(2)})
    assert run.returncode != 0
    assert f"the {legs[0].platform} build job produced no digest" in run.stderr
    assert run.tool("splitbuild") == []


def test_optional_legs_may_fail_and_the_merge_goes_on_without_their_digest(tmp_path: Path) -> None:
    """The optional leg is ``allow_failure``; the merge ``needs`` every leg (a failed required one
    stops it), checks only the required digests, passes ``--optional-platform``, drops the missing
    optional digest from the command, and reports what was left out in its dotenv."""
    config = load_case("optional")
    the_plan = plan(config)
    pipeline = parsed(config)
    assert "\n# Optional (a failed build leaves it out of the index): linux/riscv64\n" in render(config)
    allowed = {
        leg.platform: pipeline[build_job_name(config, leg)].get("allow_failure") for leg in the_plan.legs
    }
    assert allowed == {"linux/amd64": None, "linux/arm64": None, "linux/riscv64": True}
    merge = pipeline[merge_job_name(config)]
    assert [n["job"] for n in merge["needs"]] == [build_job_name(config, leg) for leg in the_plan.legs]
    assert "allow_failure" not in merge
    command = gitlab_merge_command(config, the_plan)
    digests = {"linux/amd64": _digest(1), "linux/arm64": _digest(2)}  # riscv64's leg failed: no dotenv
    dotenv = {command.digest_env[p]: d for p, d in digests.items()}
    env = {
        **CI_ENV,
        **PUSH_MAIN,
        **dotenv,
        "STUB_INDEX_DIGEST": _digest(3),
        "STUB_LEFT_OUT": '["linux/riscv64"]',
    }
    run = run_job(merge, tmp_path, env)
    assert run.returncode == 0, run.stderr
    (call,) = run.tool("splitbuild")
    expected = merge_argv(config, digests, the_plan)
    assert call["args"] == ["merge", "--json", *expected[2:]]
    assert expected[expected.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert expected[expected.index("--optional-platform") + 1] == "linux/riscv64"
    assert expected[-2:] == [_digest(1), _digest(2)]
    assert (tmp_path / "splitbuild-merge.env").read_text() == (
        f"SPLITBUILD_DIGEST={_digest(3)}\nSPLITBUILD_LEFT_OUT=linux/riscv64\n"
    )
    # A required digest missing stops the merge before splitbuild runs.
    (tmp_path / "again").mkdir()
    run = run_job(merge, tmp_path / "again", {**env, command.digest_env["linux/arm64"]: ""})
    assert run.returncode != 0
    assert "the linux/arm64 build job produced no digest" in run.stderr
    assert run.tool("splitbuild") == []


def test_an_optional_leg_whose_scan_did_not_pass_is_left_out(tmp_path: Path) -> None:
    """With ``[scan]`` an optional leg's scan job may fail; it hands its verdict to the merge job in
    a dotenv report, and the merge drops that leg's digest unless the verdict is ``passed``.
    Required legs' scans stay as they were: their failure stops the merge (``needs``)."""
    from splitbuild.workflow.gitlab import scan_job_name

    config = parse_config(VARIANTS["optional"] + '[scan]\nseverity = "high"\n', "o.toml", provider="gitlab")
    the_plan = plan(config)
    pipeline = parsed(config)
    command = gitlab_merge_command(config, the_plan)
    scans = {leg.platform: pipeline[scan_job_name(config, leg)] for leg in the_plan.legs}
    assert {p: job.get("allow_failure") for p, job in scans.items()} == {
        "linux/amd64": None,
        "linux/arm64": None,
        "linux/riscv64": True,
    }
    assert scans["linux/riscv64"]["artifacts"]["reports"] == {
        "container_scanning": "gl-container-scanning-report-linux-riscv64.json",
        "dotenv": "splitbuild-scan-linux-riscv64.env",
    }
    assert "dotenv" not in scans["linux/amd64"]["artifacts"]["reports"]
    verdict = command.digest_env["linux/riscv64"] + "_SCAN"
    assert f"printf '{verdict}=%s\\n' \"$verdict\" > splitbuild-scan-linux-riscv64.env" in "\n".join(
        scans["linux/riscv64"]["script"]
    )
    merge = pipeline[merge_job_name(config)]
    assert {n["job"]: n["artifacts"] for n in merge["needs"] if ":scan:" in n["job"]} == {
        scan_job_name(config, leg): leg.platform == "linux/riscv64" for leg in the_plan.legs
    }
    digests = {"linux/amd64": _digest(1), "linux/arm64": _digest(2), "linux/riscv64": _digest(4)}
    dotenv = {command.digest_env[p]: d for p, d in digests.items()}
    base = {**CI_ENV, **PUSH_MAIN, **dotenv, "STUB_INDEX_DIGEST": _digest(3)}
    cases: dict[str, dict[str, str]] = {
        "passed": {verdict: "passed"},
        "failed": {verdict: "failed"},
        "unscanned": {},
    }
    for case, verdicts in cases.items():
        work = tmp_path / case
        work.mkdir()
        left_out = "[]" if case == "passed" else '["linux/riscv64"]'
        run = run_job(merge, work, {**base, **verdicts, "STUB_LEFT_OUT": left_out})
        assert run.returncode == 0, run.stderr
        (call,) = run.tool("splitbuild")
        kept = digests if case == "passed" else {p: d for p, d in digests.items() if p != "linux/riscv64"}
        assert call["args"] == ["merge", "--json", *merge_argv(config, kept, the_plan)[2:]], case


def test_previews_push_merge_and_stop_for_merge_requests_of_this_project(tmp_path: Path) -> None:
    """With previews, a merge request from this project pushes, merges ``mr-<iid>`` in a review-app
    environment and has the stop job that deletes it; a fork's merge request does neither."""
    config = load_case("previews")
    the_plan = plan(config)
    pipeline = parsed(config)
    same, fork = _mr("main", SAME_PROJECT), _mr("main")
    build = pipeline[build_job_name(config, the_plan.legs[0])]
    assert evaluate(build, same).variables == {"SPLITBUILD_PUSH": "true"}
    assert evaluate(build, fork).runs
    assert evaluate(build, fork).variables == {}
    in_the_fork = _mr("main", FORK_PIPELINE)
    assert evaluate(build, in_the_fork).variables == {}  # the fork's own pipeline never pushes either
    # undefined project ids never count as the same project
    assert not evaluate(
        build, {**same, "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "", "CI_PROJECT_ID": ""}
    ).variables
    preview, stop = pipeline[preview_job_name(config)], pipeline[preview_stop_job_name(config)]
    assert evaluate(preview, same).runs
    assert not evaluate(preview, fork).runs
    assert not evaluate(preview, in_the_fork).runs
    assert not evaluate(preview, PUSH_MAIN).runs
    assert evaluate(stop, same).runs
    assert not evaluate(stop, fork).runs
    assert [r.get("when") for r in stop["rules"]] == ["manual"]
    assert stop["allow_failure"] is True
    assert stop["needs"] == []
    name = "preview/mr-$CI_MERGE_REQUEST_IID"
    assert preview["environment"] == {
        "name": name,
        "action": "start",
        "on_stop": preview_stop_job_name(config),
    }
    assert stop["environment"] == {"name": name, "action": "stop"}
    assert [n["job"] for n in preview["needs"]] == [build_job_name(config, leg) for leg in the_plan.legs]
    # The preview job merges with the mr- rule alone.
    command = gitlab_merge_command(config, the_plan)
    dotenv = {command.digest_env[leg.platform]: _digest(i) for i, leg in enumerate(the_plan.legs, start=1)}
    env = {**CI_ENV, **same, **dotenv, "CI_MERGE_REQUEST_IID": "7", "STUB_INDEX_DIGEST": _digest(3)}
    (tmp_path / "preview").mkdir()
    run = run_job(preview, tmp_path / "preview", env)
    assert run.returncode == 0, run.stderr
    (call,) = run.tool("splitbuild")
    args = call["args"]
    assert args[args.index("--tags") + 1] == "type=ref,event=pr,prefix=mr-"
    assert "--flavor" not in args
    assert args[-2:] == [_digest(1), _digest(2)]
    # The stop job deletes mr-7 in every image repository, with the credentials handed over.
    (tmp_path / "stop").mkdir()
    run = run_job(stop, tmp_path / "stop", env)
    assert run.returncode == 0, run.stderr
    calls = run.tool("splitbuild")
    assert [c["args"] for c in calls] == [["delete", f"{image}:mr-7"] for image in config.image.names]
    assert "SPLITBUILD_AUTH_DOCKER_IO_PASSWORD" in calls[0]["auth"]


def test_merge_command_is_the_github_one_renamed() -> None:
    config = load_case("hosted")
    the_plan = plan(config)
    command = gitlab_merge_command(config, the_plan)
    assert all(name.startswith("SPLITBUILD_") for name in command.env)
    assert command.env["SPLITBUILD_TAG_RULES"] == "type=ref,event=branch\ntype=semver,pattern={{version}}"
    assert command.env["SPLITBUILD_ANNOTATION_1"] == "index:org.opencontainers.image.description=App"
    digests = {leg.platform: _digest(i) for i, leg in enumerate(the_plan.legs, start=1)}
    assert command.argv(digests) == merge_argv(config, digests, the_plan)
    assert command.script(flags=("--json",)).splitlines()[len(the_plan.legs)] == "splitbuild merge --json \\"


# --- signing --------------------------------------------------------------------------------------


def _stub_cosign(workdir: Path, *, fail_sign: bool = False) -> None:
    """A fake ``cosign`` in the job's stub directory that logs its calls like the other stubs."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    stub = bin_dir / "cosign"
    stub.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "entry = {'tool': 'cosign', 'args': sys.argv[1:], 'token': os.environ.get('SIGSTORE_ID_TOKEN')}\n"
        "if sys.argv[1:2] == ['login']:\n    entry['stdin'] = sys.stdin.read()\n"
        "open(os.environ['STUB_LOG'], 'a').write(json.dumps(entry) + '\\n')\n"
        f"sys.exit(1 if {fail_sign} and sys.argv[1:2] == ['sign'] else 0)\n"
    )
    stub.chmod(0o755)


SIGN_ENV = {
    **CI_ENV,
    **PUSH_MAIN,
    "CI_COMMIT_REF_NAME": "main",
    "CI_SERVER_URL": "https://gitlab.com",
    "CI_PROJECT_PATH": "acme/app",
    "CI_CONFIG_PATH": ".gitlab-ci.yml",
    "SIGSTORE_ID_TOKEN": "oidc-token-not-for-logs",
}


def test_sign_job_follows_the_merge_job_with_an_oidc_token() -> None:
    config = load_case("signed")
    pipeline = parsed(config)
    assert list(pipeline)[-2:] == [merge_job_name(config), sign_job_name(config)]
    merge, sign = pipeline[merge_job_name(config)], pipeline[sign_job_name(config)]
    assert sign["needs"] == [{"job": merge_job_name(config), "artifacts": True}]
    assert sign["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
    assert sign["rules"] == merge["rules"]
    assert sign["image"] == "registry.example.com/mirror/cosign-shell:v2"
    assert sign["stage"] == merge["stage"]
    assert sign["tags"] == merge["tags"]
    assert sign["interruptible"] is False
    assert "artifacts" not in sign
    assert job_variables(sign) == {
        "GIT_STRATEGY": "none",
        "SPLITBUILD_IMAGE_1": "registry.gitlab.com/acme/app",
        "SPLITBUILD_IMAGE_2": "docker.io/acme/app",
        "SPLITBUILD_IMAGE_3": "quay.io/acme/app",
        "SPLITBUILD_LOGIN_3_USERNAME": "acme+ci",
    }
    for name, job in pipeline.items():
        if name != sign_job_name(config):
            assert "id_tokens" not in job
    default = parse_config(VARIANTS["signed"].split("[ci.gitlab]")[0], provider="gitlab")
    assert parsed(default)[sign_job_name(default)]["image"] == "alpine:3.22"


def test_unsigned_pipelines_have_no_sign_job(case: tuple[Config, Plan, dict[str, Any]]) -> None:
    config, _, pipeline = case
    assert (sign_job_name(config) in pipeline) == (config.ci.sign == "cosign")
    assert ("id_tokens" in render(config)) == (config.ci.sign == "cosign")


@pytest.mark.parametrize(
    "env",
    [MERGE_REQUEST, _branch("feature"), _pipeline("api", CI_COMMIT_BRANCH="main"), PUSH_MAIN, _tag("v2.0.0")],
)
def test_merge_requests_never_sign(env: dict[str, str]) -> None:
    config = load_case("signed")
    pipeline = parsed(config)
    merge = evaluate(pipeline[merge_job_name(config)], env).runs
    assert evaluate(pipeline[sign_job_name(config)], env).runs is merge
    if env is MERGE_REQUEST:
        assert not merge


def test_sign_job_logs_in_and_signs_every_image_by_digest(tmp_path: Path) -> None:
    config = load_case("signed")
    sign = parsed(config)[sign_job_name(config)]
    _stub_cosign(tmp_path)
    index = _digest(9)
    run = run_job(sign, tmp_path, {**SIGN_ENV, "SPLITBUILD_DIGEST": index})
    assert run.returncode == 0, run.stderr
    calls = run.tool("cosign")
    logins_done = [(c["args"][-1], c["args"][2], c["stdin"]) for c in calls if c["args"][0] == "login"]
    assert logins_done == _login_expectations(config)
    assert all(c["args"][3] == "--password-stdin" for c in calls if c["args"][0] == "login")
    signs = [c for c in calls if c["args"][0] == "sign"]
    assert [c["args"] for c in signs] == [["sign", "--yes", f"{name}@{index}"] for name in config.image.names]
    assert all(c["token"] == "oidc-token-not-for-logs" for c in signs)
    assert [c["args"][0] for c in calls] == ["login"] * 3 + ["sign"] * 3
    identity = "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main"
    for name in config.image.names:
        assert (
            f'cosign verify "{name}@{index}" \\\n  --certificate-identity "{identity}" \\\n'
            '  --certificate-oidc-issuer "https://gitlab.com"\n'
        ) in run.stdout
    for secret in [*SECRETS, "oidc-token-not-for-logs"]:
        assert secret not in run.stdout + run.stderr
        assert all(secret not in " ".join(c["args"]) for c in calls)


def test_sign_job_identity_of_a_tag_pipeline(tmp_path: Path) -> None:
    config = load_case("signed")
    sign = parsed(config)[sign_job_name(config)]
    _stub_cosign(tmp_path)
    env = {**SIGN_ENV, **_tag("v2.0.0"), "CI_COMMIT_REF_NAME": "v2.0.0", "SPLITBUILD_DIGEST": _digest(3)}
    env.pop("CI_COMMIT_BRANCH")
    run = run_job(sign, tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert (
        '--certificate-identity "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/tags/v2.0.0"' in run.stdout
    )


@pytest.mark.parametrize("digest", ["", "sha256:abc", "latest"])
def test_sign_job_refuses_anything_but_a_digest(digest: str, tmp_path: Path) -> None:
    config = load_case("signed")
    sign = parsed(config)[sign_job_name(config)]
    _stub_cosign(tmp_path)
    env = {**SIGN_ENV, "SPLITBUILD_DIGEST": digest} if digest else dict(SIGN_ENV)
    run = run_job(sign, tmp_path, env)
    assert run.returncode != 0
    assert "the merge job gave no index digest to sign" in run.stderr
    assert [c for c in run.tool("cosign") if c["args"][0] == "sign"] == []


def test_sign_job_stops_at_the_first_failed_signature(tmp_path: Path) -> None:
    config = load_case("signed")
    sign = parsed(config)[sign_job_name(config)]
    _stub_cosign(tmp_path, fail_sign=True)
    run = run_job(sign, tmp_path, {**SIGN_ENV, "SPLITBUILD_DIGEST": _digest(4)})
    assert run.returncode != 0
    assert len([c for c in run.tool("cosign") if c["args"][0] == "sign"]) == 1
    assert "Verify with" not in run.stdout


def test_sign_job_installs_cosign_only_when_the_image_lacks_it(tmp_path: Path) -> None:
    config = load_case("signed")
    sign = parsed(config)[sign_job_name(config)]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apk = bin_dir / "apk"
    # A fake apk whose "install" puts the cosign stub in place.
    apk.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "open(os.environ['STUB_LOG'], 'a').write(json.dumps({'tool': 'apk', 'args': sys.argv[1:]}) + '\\n')\n"
        f"os.rename({str(tmp_path / 'cosign.pending')!r}, {str(bin_dir / 'cosign')!r})\n"
    )
    apk.chmod(0o755)
    _stub_cosign(tmp_path)
    (bin_dir / "cosign").rename(tmp_path / "cosign.pending")
    system_path = os.pathsep.join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir())
    env = {**SIGN_ENV, "SPLITBUILD_DIGEST": _digest(5), "PATH": f"{bin_dir}{os.pathsep}{system_path}"}
    run = run_job(sign, tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert [c["args"] for c in run.tool("apk")] == [["add", "--no-cache", "cosign"]]
    run = run_job(sign, tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert len(run.tool("apk")) == 1  # from the first run's log: cosign was there the second time


def test_header_says_where_keyless_signing_works() -> None:
    assert "# Keyless signing needs GitLab.com and this CI config in the project itself" in render(
        load_case("signed")
    )
    assert "Keyless signing" not in render(load_case("hosted"))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[ci]\nattest = true\n",
            "ci: attest = true is not supported with provider 'gitlab': it records a GitHub artifact "
            "attestation (actions/attest-build-provenance), which only GitHub Actions has",
        ),
        ('[ci]\nsign = "gpg"\n', "ci.sign: must be 'cosign' or false"),
        ('[ci.gitlab]\ncosign-image = "a b"\n', "ci.gitlab.cosign-image: image 'a b' must be an image"),
    ],
)
def test_signing_keys_gitlab_cannot_use_fail_naming_the_provider(toml: str, message: str) -> None:
    base = '[image]\nnames = ["registry.gitlab.com/a/b"]\nplatforms = ["linux/amd64"]\n'
    with pytest.raises(ConfigError) as info:
        parse_config(base + toml, "splitbuild.toml", provider="gitlab")
    assert str(info.value).startswith("splitbuild.toml: " + message)


# --- header, errors, drift ----------------------------------------------------------------------


def test_header_names_the_command_and_what_gitlab_needs_from_you() -> None:
    config = load_case("hosted")
    text = render_pipeline(
        config, plan(config), config_path="ci/splitbuild.toml", output_path=".gitlab/split.yml", ci_flag=True
    )
    lines = text.splitlines()
    assert lines[1].endswith(
        "run: splitbuild generate --ci gitlab --config ci/splitbuild.toml --output .gitlab/split.yml"
    )
    assert "#   linux/s390x   qemu    on saas-linux-small-amd64" in lines
    assert "# Include it from .gitlab-ci.yml: include: [{local: .gitlab/split.yml}]" in lines
    assert "# Scheduled pipelines publish; create them in Build > Pipeline schedules: 0 4 * * 1" in lines
    buildah = load_case("buildah")
    text = render(buildah)
    assert "# buildah pushes each platform to registry.example.com/team/app by digest, no tag" in text
    assert "# linux/riscv64: buildah emulates it with the QEMU binfmt handlers of the runner's host" in text
    assert "Declare the stages images and publish" in render(load_case("no-merge-requests"))


def _pipeline_for(text: str) -> None:
    config = parse_config(text, provider="gitlab")
    build_pipeline(config, plan(config))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[ci]\ncache = "gha"\n',
            "cache 'gha' is GitHub's cache service; with GitLab use 'registry' or 'none'",
        ),
        ('[ci]\nname = ".hidden"\n', "GitLab hides jobs whose name starts with '.'"),
        (
            '[runners]\n"linux/arm64" = "ubuntu-24.04-arm"\n',
            "[runners] \"linux/arm64\": runner 'ubuntu-24.04-arm' is a GitHub Actions runner label",
        ),
        (
            '[ci]\nmerge-runner = "ubuntu-24.04"\n',
            "merge-runner: runner 'ubuntu-24.04' is a GitHub Actions runner",
        ),
        ('[ci]\nbranches = ["!main"]\n', "exclusions ('!') need a pattern to narrow"),
        ('[ci]\nbranches = ["!x", "main"]\n', "'main' follows an exclusion"),
        ('[ci]\ntags = ["?v"]\n', "'?' must follow a character it repeats"),
    ],
)
def test_configs_gitlab_cannot_run_fail_with_one_line(toml: str, message: str) -> None:
    base = '[image]\nnames = ["registry.gitlab.com/a/b"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
    with pytest.raises(ConfigError) as info:
        _pipeline_for(base + toml)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_github_writer_and_gitlab_writer_refuse_each_others_configs() -> None:
    from splitbuild.workflow.github import build_workflow

    gitlab = load_case("minimal")
    with pytest.raises(ConfigError, match="does not write GitLab pipelines"):
        build_workflow(gitlab, plan(gitlab))
    github = parse_config('[image]\nnames = ["ghcr.io/a/b"]\nplatforms = ["linux/amd64"]\n')
    with pytest.raises(ConfigError, match="needs a config and plan for provider 'gitlab'"):
        build_pipeline(github, plan(github))


def test_login_with_a_literal_user_name_goes_through_a_variable() -> None:
    config = load_case("buildah")
    (ci_registry, quay) = logins(config)
    assert (ci_registry.registry, ci_registry.username, ci_registry.password) == (
        "registry.example.com",
        '"$CI_REGISTRY_USER"',
        '"$CI_REGISTRY_PASSWORD"',
    )
    assert quay.variables == {"SPLITBUILD_LOGIN_2_USERNAME": "team+ci"}
    assert quay.required == ("QUAY_TOKEN",)
    assert isinstance(config.ci.logins["quay.io"], LoginConfig)


@pytest.mark.parametrize("name", EXAMPLES)
def test_reference_pipeline_matches_generator(name: str) -> None:
    """The drift check: regenerate each example's GitLab pipeline and compare bytes."""
    config_path = f"examples/{name}/splitbuild.toml"
    output_path = f"workflows/{name}.gitlab-ci.yml"
    config = load_config(REPO / config_path, provider="gitlab")
    expected = render_pipeline(
        config, plan(config), config_path=config_path, output_path=output_path, ci_flag=True
    )
    assert (REPO / output_path).read_text() == expected, f"regenerate with the command in {output_path}"


def test_every_reference_pipeline_has_an_example() -> None:
    for path in WORKFLOWS.glob("*.gitlab-ci.yml"):
        name = path.name.removesuffix(".gitlab-ci.yml")
        assert name in EXAMPLES, f"{path.name}: add {name} to EXAMPLES so it is drift-checked"
        assert (REPO / "examples" / name / "splitbuild.toml").is_file()


def test_a_preview_waits_for_every_scan_as_the_merge_does() -> None:
    """With ``[scan]`` the preview, like the merge, needs each leg's scan job: a finding keeps
    ``mr-<iid>`` from being published."""
    from splitbuild.workflow.gitlab import scan_job_name

    config = parse_config(VARIANTS["previews"] + '[scan]\nseverity = "high"\n', "p.toml", provider="gitlab")
    pipeline = parsed(config)
    legs = plan(config).legs
    scans = {scan_job_name(config, leg) for leg in legs}
    assert len(scans) == 2
    preview_needs = {need["job"] for need in pipeline[preview_job_name(config)]["needs"]}
    merge_needs = {need["job"] for need in pipeline[merge_job_name(config)]["needs"]}
    assert scans <= preview_needs
    assert preview_needs == merge_needs


def test_a_merge_request_never_exports_the_build_cache_even_when_it_pushes() -> None:
    """A preview's build jobs push, but the registry cache release builds read is written only by
    pipelines that are not a merge request's."""
    text = VARIANTS["previews"].replace("previews = true", 'previews = true\ncache = "registry"')
    config = parse_config(text, "p.toml", provider="gitlab")
    script = "\n".join(parsed(config)[build_job_name(config, plan(config).legs[0])]["script"])
    assert (
        'if [ "$SPLITBUILD_PUSH" = true ] && [ "$CI_PIPELINE_SOURCE" != merge_request_event ]; then' in script
    )
    assert "set -- --cache-to" in script
