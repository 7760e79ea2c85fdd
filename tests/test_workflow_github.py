"""Structural tests of the generated GitHub Actions workflow: parse the YAML and check the build
jobs (one per platform), runners, QEMU legs, output wiring, permissions, pins, credentials, list
inputs (through the real parser) and the merge job."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitbuild._version import __version__
from splitbuild.config import Config, image_registry, parse_config
from splitbuild.errors import ConfigError
from splitbuild.planner import Leg, Plan, plan
from splitbuild.workflow.github import build_job_id, build_workflow, regenerate_command, render_workflow
from splitbuild.workflow.github_signing import attestation_subject
from splitbuild.workflow.install_lock import requirements_text
from splitbuild.workflow.merge_step import merge_argv, merge_command
from splitbuild.workflow.pins import all_pins
from tests.action_parser import node_get_list
from tests.workflow_variants import EXAMPLES, VARIANTS, load_variant

REPO = Path(__file__).resolve().parent.parent
DIGESTS = [f"sha256:{c * 64}" for c in "0123456789abcdef"]


ALL = [*VARIANTS, *EXAMPLES]
PREVIEW_JOBS = ["preview", "preview-cleanup"]


def render(config: Config) -> str:
    return render_workflow(config, plan(config), config_path="splitbuild.toml", output_path="out.yml")


def parsed(config: Config) -> dict[Any, Any]:
    data = yaml.safe_load(render(config))
    assert isinstance(data, dict)
    return data


def build_jobs(wf: dict[Any, Any], the_plan: Plan) -> list[tuple[Leg, dict[str, Any]]]:
    """Each leg with its build job; the workflow has exactly these jobs besides merge (and, with
    previews, the preview and its clean-up)."""
    previews = [job for job in PREVIEW_JOBS if job in wf["jobs"]]
    assert previews in ([], PREVIEW_JOBS)
    assert list(wf["jobs"]) == [build_job_id(leg) for leg in the_plan.legs] + ["merge", *previews]
    return [(leg, wf["jobs"][build_job_id(leg)]) for leg in the_plan.legs]


def builds(wf: dict[Any, Any]) -> list[dict[str, Any]]:
    return [job for name, job in wf["jobs"].items() if name.startswith("build-")]


def first_build(wf: dict[Any, Any]) -> dict[str, Any]:
    job = next(iter(wf["jobs"].values()))
    assert isinstance(job, dict)
    return job


def steps_named(job: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s["name"].startswith(prefix)]


def one_step(job: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = steps_named(job, prefix)
    assert len(found) == 1, [s["name"] for s in job["steps"]]
    return found[0]


@pytest.fixture(params=ALL)
def case(request: pytest.FixtureRequest) -> tuple[Config, Plan, dict[Any, Any]]:
    config = load_variant(request.param)
    return config, plan(config), parsed(config)


def test_one_build_job_per_platform_with_planned_runner(
    case: tuple[Config, Plan, dict[Any, Any]],
) -> None:
    config, the_plan, wf = case
    jobs = build_jobs(wf, the_plan)
    assert [leg.platform for leg, _ in jobs] == config.image.platforms
    for leg, job in jobs:
        assert job["name"] == f"build {leg.platform}"
        runner = job["runs-on"]
        assert (runner if isinstance(runner, list) else [runner]) == list(leg.runner)
        expected_timeout = config.ci.qemu_timeout_minutes if leg.mode == "qemu" else config.ci.timeout_minutes
        assert job["timeout-minutes"] == expected_timeout
        assert "strategy" not in job
        assert "matrix." not in yaml.safe_dump(job)
        assert one_step(job, "Build and push")["with"]["platforms"] == leg.platform


def test_qemu_only_on_emulated_legs_and_only_their_platform(
    case: tuple[Config, Plan, dict[Any, Any]],
) -> None:
    config, the_plan, wf = case
    for leg, job in build_jobs(wf, the_plan):
        qemu_steps = steps_named(job, "Set up QEMU")
        if leg.mode != "qemu":
            assert qemu_steps == []
            continue
        (step,) = qemu_steps
        assert "if" not in step
        assert step["with"]["platforms"] == leg.platform.split("/")[1]
        if config.ci.binfmt_image:
            assert step["with"]["image"] == config.ci.binfmt_image
        names = [s["name"] for s in job["steps"]]
        assert names.index(step["name"]) < names.index("Set up Buildx")


def test_digest_outputs_are_wired_from_legs_to_merge(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    """Each digest is the output of its own job: nothing relies on the server merging the outputs
    of a matrix's legs (which act and Gitea before 1.23 do not do)."""
    config, the_plan, wf = case
    merge = wf["jobs"]["merge"]
    for _, job in build_jobs(wf, the_plan):
        assert job["outputs"] == {"digest": "${{ steps.digest.outputs.digest }}"}
        export = one_step(job, "Export digest")
        assert export["id"] == "digest"
        assert export["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
        assert one_step(job, "Build and push")["id"] == "build"
    assert merge["needs"] == [build_job_id(leg) for leg in the_plan.legs]
    env = one_step(merge, "Merge")["env"]
    command = merge_command(config)
    for leg in the_plan.legs:
        assert env[command.digest_env[leg.platform]] == f"${{{{ needs.{build_job_id(leg)}.outputs.digest }}}}"


def test_least_permissions(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    assert wf["permissions"] == {}
    token_to_ghcr = any(image_registry(n) == "ghcr.io" for n in config.image.names) and (
        "ghcr.io" not in config.ci.logins
    )
    packages = {"packages": "write"} if token_to_ghcr else {}
    # Only build jobs that scan upload SARIF to code scanning.
    sarif = {"security-events": "write"} if config.scan is not None else {}
    for job in builds(wf):
        assert job["permissions"] == {"contents": "read", **packages, **sarif}
    signing = {"id-token": "write"} if config.ci.sign or config.ci.attest else {}
    attestations = {"attestations": "write"} if config.ci.attest else {}
    assert wf["jobs"]["merge"]["permissions"] == {**packages, **signing, **attestations}
    for name in PREVIEW_JOBS:  # never signs: no token beyond pushing (and deleting) the preview
        assert wf["jobs"].get(name, {"permissions": packages})["permissions"] == packages


def test_permissions_carry_a_reason() -> None:
    text = render(load_variant("minimal-ghcr"))
    assert "contents: read # check out the repository" in text
    assert text.count("packages: write # push to ghcr.io with GITHUB_TOKEN") == 2  # one leg, merge


def test_every_action_is_pinned_to_a_listed_sha_with_its_tag(
    case: tuple[Config, Plan, dict[Any, Any]],
) -> None:
    config, _, _ = case
    text = render(config)
    pins = all_pins()
    uses_lines = [line.strip() for line in text.splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert uses_lines
    for line in uses_lines:
        match = re.fullmatch(
            r"(?:- )?uses: ([\w.-]+/[\w.-]+(?:/[\w.-]+)?)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)", line
        )
        assert match, line
        action, sha, tag = match.groups()
        assert pins[action].sha == sha
        assert pins[action].tag == tag


def test_checkout_does_not_persist_credentials(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    _, _, wf = case
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "uses" in step and step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false"


def test_run_scripts_take_values_only_from_env(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    _, _, wf = case
    # Set by the runner for every step, never from the workflow text.
    runner_vars = {
        "GITHUB_OUTPUT",
        "GITHUB_PATH",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_SERVER_URL",
        "GITHUB_WORKFLOW_REF",
        "RUNNER_TEMP",
    }
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            assert "${{" not in step["run"]
            assert step["shell"] == "bash"
            used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", step["run"]))
            assert used <= set(step.get("env", {})) | runner_vars, step["name"]


def test_pull_requests_build_but_neither_log_in_nor_push(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    """Without previews no pull request logs in or pushes; with them only those from a branch of
    this repository do (never a fork's)."""
    config, the_plan, wf = case
    not_pr = "github.event_name != 'pull_request'"
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    pushing = f"({not_pr} || {same_repo})" if config.ci.previews else not_pr
    assert ("pull_request" in wf["on"]) == config.ci.pull_requests
    merge = wf["jobs"]["merge"]
    for build in builds(wf):
        for login in steps_named(build, "Log in"):
            assert login["if"] == pushing
        outputs = one_step(build, "Build and push")["with"]["outputs"]
        assert outputs.endswith(f"push-by-digest=true,name-canonical=true,push=${{{{ {pushing} }}}}")
    if config.image.optional_platforms:  # every required leg succeeded; an optional one may fail
        required = [leg for leg in the_plan.legs if leg.platform not in config.image.optional_platforms]
        checks = [f"needs.{build_job_id(leg)}.result == 'success'" for leg in required]
        assert merge["if"] == " && ".join(["!cancelled()", not_pr, *checks])
    else:
        assert merge["if"] == not_pr
    assert all("if" not in step for step in merge["steps"])


def test_logins_cover_every_registry_that_needs_one(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    wanted = [r for r in config.registries if config.ci.logins.get(r) is not False]
    for job in wf["jobs"].values():
        logins = steps_named(job, "Log in to ")
        assert [s["name"].removeprefix("Log in to ") for s in logins] == wanted
        for step in logins:
            registry = step["name"].removeprefix("Log in to ")
            assert step["with"].get("registry") == (None if registry == "docker.io" else registry)
            assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_][A-Z0-9_]* \}\}", step["with"]["password"])


def test_build_inputs_follow_the_config(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    with_ = one_step(first_build(wf), "Build and push")["with"]
    image = config.image
    assert with_["context"] == image.context
    assert with_.get("file") == image.dockerfile
    assert with_.get("target") == image.target
    assert with_["platforms"] == config.image.platforms[0]
    names = ",".join(image.names)
    attestations = config.ci.provenance is not False or config.ci.sbom
    options = "oci-mediatypes=true" + (",oci-artifact=true" if attestations else "")
    assert with_["outputs"].startswith(f'type=image,"name={names}",{options},push-by-digest=true,')
    assert node_get_list(with_.get("build-args", "")) == [f"{k}={v}" for k, v in image.build_args.items()]
    assert with_.get("secret-envs", "").splitlines() == [f"{k}={v}" for k, v in image.secrets.items()]
    provenance = config.ci.provenance
    assert with_["provenance"] == ("false" if provenance is False else f"mode={provenance}")
    assert ("sbom" in with_) == config.ci.sbom
    env = one_step(first_build(wf), "Build and push").get("env", {})
    assert env == {v: f"${{{{ secrets.{v} }}}}" for v in image.secrets.values()}


def test_labels_are_identical_on_every_platform(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    labels = {one_step(job, "Build and push")["with"]["labels"] for job in builds(wf)}
    assert len(labels) == 1
    (text,) = labels
    assert "created" not in text
    lines = node_get_list(text)
    assert "org.opencontainers.image.revision=${{ github.sha }}" in lines
    for key, value in config.image.labels.items():
        assert f"{key}={value}" in lines


def test_cache_scope_per_platform(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    _, the_plan, _ = case
    for leg, job in build_jobs(wf, the_plan):
        with_ = one_step(job, "Build and push")["with"]
        if config.ci.cache == "none":
            assert "cache-from" not in with_
            assert "cache-to" not in with_
            continue
        assert leg.pair in with_["cache-from"]
        assert leg.pair in with_["cache-to"]
        assert f"mode={config.ci.cache_mode}" in with_["cache-to"]
        if config.ci.cache == "gha":
            assert with_["cache-from"] == f"type=gha,scope=splitbuild-{leg.pair}"
        else:
            assert with_["cache-from"] == f"type=registry,ref={config.image.names[0]}:buildcache-{leg.pair}"
            assert "github.event_name != 'pull_request'" in with_["cache-to"]


def test_merge_job_installs_the_configured_splitbuild(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    merge = wf["jobs"]["merge"]
    install = one_step(merge, "Install splitbuild")
    assert install["env"] == {"SPLITBUILD_INSTALL": config.ci.install, "SPLITBUILD_LOCK": requirements_text()}
    assert one_step(merge, "Set up Python")["with"] == {"python-version": config.ci.python_version}
    runs_on = merge["runs-on"]
    assert (runs_on if isinstance(runs_on, list) else [runs_on]) == list(config.ci.merge_runner_labels)
    assert merge["timeout-minutes"] == config.ci.merge_timeout_minutes


def test_default_install_is_this_release() -> None:
    wf = parsed(load_variant("minimal-ghcr"))
    install = one_step(wf["jobs"]["merge"], "Install splitbuild")
    assert install["env"]["SPLITBUILD_INSTALL"] == f"splitbuild=={__version__}"


def test_triggers_and_concurrency(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    on = wf["on"]
    ci = config.ci
    if ci.branches or ci.tags:
        assert on["push"].get("branches", []) == ci.branches
        assert on["push"].get("tags", []) == ci.tags
    else:
        assert "push" not in on
    assert ("workflow_dispatch" in on) == ci.workflow_dispatch
    assert [s["cron"] for s in on.get("schedule", [])] == ci.schedule
    assert wf["concurrency"]["group"] == "${{ github.workflow }}-${{ github.ref }}"
    assert "pull_request_target" not in on
    assert "workflow_run" not in on


def _run_bash(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _stub_splitbuild(tmp_path: Path) -> Path:
    """A fake ``splitbuild`` on PATH that records its argv as JSON."""
    record = tmp_path / "argv.json"
    stub = tmp_path / "splitbuild"
    stub.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    stub.chmod(0o755)
    return record


def test_merge_script_runs_exactly_merge_argv(
    case: tuple[Config, Plan, dict[Any, Any]], tmp_path: Path
) -> None:
    config, the_plan, wf = case
    step = one_step(wf["jobs"]["merge"], "Merge")
    digests = dict(zip(the_plan.platforms, DIGESTS, strict=False))
    command = merge_command(config)
    env = {k: v for k, v in step["env"].items() if "${{" not in v}
    env.update({command.digest_env[p]: d for p, d in digests.items()})
    record = _stub_splitbuild(tmp_path)
    result = _run_bash(step["run"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ["splitbuild", *json.loads(record.read_text())] == merge_argv(config, digests)


def test_merge_argv_shape() -> None:
    config = load_variant("five-platforms")
    digests = dict(zip(plan(config).platforms, DIGESTS, strict=False))
    argv = merge_argv(config, digests)
    assert argv[:2] == ["splitbuild", "merge"]
    assert argv[argv.index("--image") + 1] == "ghcr.io/acme/app"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--image"] == config.image.names
    assert argv[argv.index("--tags") + 1] == "\n".join(config.tags.rules)
    assert argv[argv.index("--flavor") + 1] == "latest=auto"
    assert argv[argv.index("--labels") + 1] == "org.opencontainers.image.vendor=Acme"
    assert argv[argv.index("--annotation") + 1] == config.image.annotations[0]
    assert argv[argv.index("--platform") + 1] == ",".join(config.image.platforms)
    assert argv[-5:] == list(digests.values())


def test_merge_argv_rejects_wrong_digests() -> None:
    from splitbuild.errors import ConfigError

    config = load_variant("ghcr-two-platforms")
    with pytest.raises(ConfigError, match="missing: linux/arm64"):
        merge_argv(config, {"linux/amd64": DIGESTS[0]})
    with pytest.raises(ConfigError, match="not sha256"):
        merge_argv(config, {"linux/amd64": DIGESTS[0], "linux/arm64": "sha256:abc"})
    argv = merge_argv(config, {"linux/amd64": DIGESTS[0], "linux/arm64/v8": DIGESTS[1]})
    assert argv[-1] == DIGESTS[1]


def test_merge_script_stops_when_a_leg_gave_no_digest(tmp_path: Path) -> None:
    config = load_variant("ghcr-two-platforms")
    step = one_step(parsed(config)["jobs"]["merge"], "Merge")
    env = {k: v for k, v in step["env"].items() if "${{" not in v}
    env["DIGEST_LINUX_AMD64"] = DIGESTS[0]
    env["DIGEST_LINUX_ARM64"] = ""
    record = _stub_splitbuild(tmp_path)
    result = _run_bash(step["run"], env, tmp_path)
    assert result.returncode != 0
    assert "the linux/arm64 build job produced no digest" in result.stderr
    assert not record.exists()


def test_optional_legs_continue_on_error_and_the_merge_goes_on_without_them(tmp_path: Path) -> None:
    """Only optional legs carry ``continue-on-error``; the merge runs unless cancelled and only
    when every required leg succeeded (whatever the optional ones did); it checks only the
    required digests and leaves an empty optional digest out of the command."""
    config = load_variant("optional-platforms")
    the_plan = plan(config)
    wf = parsed(config)
    note = "# Optional (a failed build leaves it out of the index): linux/arm64, linux/riscv64"
    assert f"\n{note}\n" in render(config)
    flags = {leg.platform: job.get("continue-on-error") for leg, job in build_jobs(wf, the_plan)}
    assert flags == {"linux/amd64": None, "linux/arm64": True, "linux/riscv64": True}
    merge = wf["jobs"]["merge"]
    assert merge["needs"] == [build_job_id(leg) for leg in the_plan.legs]
    assert merge["if"] == (
        "!cancelled() && github.event_name != 'pull_request' && needs.build-linux-amd64.result == 'success'"
    )
    assert merge["outputs"]["left-out"] == "${{ steps.merge.outputs.left-out }}"
    step = one_step(merge, "Merge")
    assert step["env"]["PLATFORMS"] == "linux/amd64"
    assert step["env"]["OPTIONAL_PLATFORMS"] == "linux/arm64,linux/riscv64"
    command = merge_command(config)
    env = {k: v for k, v in step["env"].items() if "${{" not in v}
    env |= {command.digest_env["linux/amd64"]: DIGESTS[0], command.digest_env["linux/arm64"]: ""}
    env[command.digest_env["linux/riscv64"]] = DIGESTS[2]
    record = _stub_splitbuild(tmp_path)
    result = _run_bash(step["run"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    argv = ["splitbuild", *json.loads(record.read_text())]
    assert argv == merge_argv(config, {"linux/amd64": DIGESTS[0], "linux/riscv64": DIGESTS[2]})
    assert argv[argv.index("--optional-platform") + 1] == "linux/arm64,linux/riscv64"
    assert argv[-2:] == [DIGESTS[0], DIGESTS[2]]
    record.unlink()
    result = _run_bash(step["run"], {**env, command.digest_env["linux/amd64"]: ""}, tmp_path)
    assert result.returncode != 0
    assert "the linux/amd64 build job produced no digest" in result.stderr
    assert not record.exists()
    with pytest.raises(ConfigError, match="missing: linux/amd64"):
        merge_argv(config, {"linux/arm64": DIGESTS[1]})


@pytest.mark.parametrize(
    ("digest", "ok"),
    [(DIGESTS[3], True), ("", False), ("sha256:1234", False), ("sha512:" + "a" * 128, False)],
)
def test_export_digest_script(digest: str, ok: bool, tmp_path: Path) -> None:
    step = one_step(first_build(parsed(load_variant("minimal-ghcr"))), "Export digest")
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        "DIGEST": digest,
        "PLATFORM": "linux/amd64",
        "GITHUB_OUTPUT": str(output),
    }
    result = _run_bash(step["run"], env, tmp_path)
    assert (result.returncode == 0) == ok
    if ok:
        assert output.read_text() == f"digest={digest}\n"
    else:
        assert output.read_text() == ""
        assert "::error::build-push-action gave no image digest for linux/amd64" in result.stdout


def test_output_is_deterministic_and_has_a_header() -> None:
    config = load_variant("five-platforms")
    first = render_workflow(config, plan(config), config_path="a/splitbuild.toml", output_path="w.yml")
    second = render_workflow(config, plan(config), config_path="a/splitbuild.toml", output_path="w.yml")
    assert first == second
    lines = first.splitlines()
    assert lines[0] == f"# Generated by splitbuild {__version__} from a/splitbuild.toml; do not edit by hand."
    assert lines[1].endswith("splitbuild generate --config a/splitbuild.toml --output w.yml")
    assert "#   linux/ppc64le  qemu    on ubuntu-24.04" in lines


def test_regenerate_command_omits_defaults_and_quotes() -> None:
    assert regenerate_command("splitbuild.toml", ".github/workflows/splitbuild.yml") == "splitbuild generate"
    assert (
        regenerate_command("my dir/x.toml", "out.yml")
        == "splitbuild generate --config 'my dir/x.toml' --output out.yml"
    )


def test_workflow_pins_lists_actions_in_use() -> None:
    native = load_variant("ghcr-two-platforms")
    emulated = load_variant("five-platforms")
    native_actions = [p.action for p in build_workflow(native, plan(native)).pins()]
    assert "docker/setup-qemu-action" not in native_actions
    assert native_actions == [
        "actions/checkout",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/build-push-action",
        "actions/setup-python",
    ]
    assert "docker/setup-qemu-action" in [p.action for p in build_workflow(emulated, plan(emulated)).pins()]


def test_config_strings_cannot_break_out_of_yaml_or_shell(tmp_path: Path) -> None:
    config = load_variant("quay-registry-cache")
    wf = parsed(config)
    build_args = one_step(first_build(wf), "Build and push")["with"]["build-args"]
    assert node_get_list(build_args)[1] == "COMMIT_NOTE=quotes ' and \" and $dollar"
    install = one_step(wf["jobs"]["merge"], "Install splitbuild")
    assert "${{" not in install["run"]
    assert '"$SPLITBUILD_INSTALL" >' in install["run"]  # written to a file, never expanded as code


# --- list inputs: CSV as build-push-action parses it (issue 13 item 9) -------------------------------

AWKWARD = {
    "LIST": 'a,"b"',
    "QUOTE": '"',
    "COMMAS": ",,x,",
    "MIXED": 'say "hi", then ""leave""',
    "SPACED": " lead,  inside",
    "PLAIN": "v1.2.3",
    "EMPTY": "",
}


def _awkward_config() -> Config:
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in AWKWARD.items())
    return parse_config(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'
        f"[image.build-args]\n{table}[image.labels]\n{table}"
        '[image.build-contexts]\nsrc = "docker-image://alpine:3.20,odd"\n',
        "awkward.toml",
    )


def test_build_args_labels_and_contexts_reach_the_build_byte_for_byte() -> None:
    """Through the real parser (Util.getList of @docker/actions-toolkit, as build-push-action
    calls it), each item comes back exactly; unquoted, ``LIST=a,"b"`` arrived as ``LIST=a,b``."""
    with_ = one_step(first_build(parsed(_awkward_config())), "Build and push")["with"]
    expected = [f"{k}={v}" for k, v in AWKWARD.items()]
    assert node_get_list(with_["build-args"]) == expected
    assert node_get_list(with_["labels"])[2:] == expected
    assert node_get_list(with_["build-contexts"]) == ["src=docker-image://alpine:3.20,odd"]


@pytest.mark.parametrize("value", ["trail ", "tab\t", "x, "])
def test_values_the_action_would_trim_are_refused(value: str) -> None:
    from splitbuild.errors import ConfigError

    config = parse_config(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'
        f"[image.labels]\nx = {json.dumps(value)}\n",
        "t.toml",
    )
    with pytest.raises(ConfigError, match="begins or ends with white space, which docker/build-push-action"):
        render(config)


# --- merge job: install before login, pinned by hash (item 7); environment (item 10) ----------------


def test_merge_job_installs_from_the_hash_lock_before_any_login(
    case: tuple[Config, Plan, dict[Any, Any]],
) -> None:
    _, _, wf = case
    steps = wf["jobs"]["merge"]["steps"]
    names = [s["name"] for s in steps]
    install_at = names.index("Install splitbuild (before any login)")
    logins = [i for i, n in enumerate(names) if n.startswith("Log in")]
    assert all(install_at < i for i in logins)
    assert names.index("Set up Python") < install_at
    script = steps[install_at]["run"]
    assert 'python -m venv --without-pip "$venv"' in script
    assert 'pip=(python -m pip --python "$venv/bin/python"' in script
    assert "install --no-compile --require-hashes --no-deps --only-binary=:all: -r" in script
    assert "install --no-compile --no-deps -r" in script
    assert '"${pip[@]}" check' in script
    lock = steps[install_at]["env"]["SPLITBUILD_LOCK"]
    requirements = [line for line in lock.splitlines() if not line.startswith(" ")]
    assert requirements
    assert all(re.fullmatch(r"[a-z0-9-]+==\S+ \\", line) for line in requirements)


def test_environment_scopes_the_jobs_that_push() -> None:
    config = load_variant("five-platforms")
    assert config.ci.environment == "registry"
    wf = parsed(config)
    assert wf["jobs"]["merge"]["environment"] == "registry"
    for job in builds(wf):
        # pull requests push nothing and must not wait for the environment's protection rules
        assert job["environment"] == "${{ github.event_name != 'pull_request' && 'registry' || '' }}"
    assert all("environment" not in job for job in parsed(load_variant("minimal-ghcr"))["jobs"].values())


@pytest.mark.parametrize("name", ["a'b", " x", "x\ny", "${{ x }}", ""])
def test_environment_names_are_validated(name: str) -> None:
    from splitbuild.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_config(
            '[image]\nnames = ["ghcr.io/a/b"]\nplatforms = ["linux/amd64"]\n'
            f"[ci]\nenvironment = {json.dumps(name)}\n",
            "t.toml",
        )


def _auditor_findings(path: Path) -> list[str]:
    import shutil
    import sys

    zizmor = shutil.which("zizmor") or shutil.which("zizmor", path=str(Path(sys.executable).parent))
    assert zizmor, "zizmor is not installed (dev extra)"
    result = subprocess.run(
        [zizmor, "--offline", "--persona", "auditor", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return [finding["ident"] for finding in json.loads(result.stdout or "[]")]


@pytest.mark.parametrize("name", ["portable", "five-platforms", "self-hosted", "signed", "hello"])
def test_zizmor_auditor_findings_are_explained(name: str, tmp_path: Path) -> None:
    """zizmor's auditor persona finds two things in generated workflows, both the user's choice:
    registry secrets used by jobs outside a deployment environment (secrets-outside-env), which
    ``[ci] environment`` removes by putting every pushing job in one, and self-hosted runners
    (self-hosted-runner), flagged whenever ``[runners]`` names one. GITHUB_TOKEN alone (hello) is
    not flagged."""
    text = (REPO / "examples" / name / "splitbuild.toml").read_text()
    without = parse_config(text.replace('environment = "registry"\n', ""), "t.toml")
    self_hosted = {"self-hosted-runner"} if name == "self-hosted" else set()
    path = tmp_path / "without.yml"
    path.write_text(render(without))
    uses_secrets = re.search(r"secrets\.(?!GITHUB_TOKEN\b)", path.read_text()) is not None
    expected = ({"secrets-outside-env"} if uses_secrets else set()) | self_hosted
    assert set(_auditor_findings(path)) == expected
    scoped = without.model_copy(update={"ci": without.ci.model_copy(update={"environment": "registry"})})
    path.write_text(render(scoped))
    assert set(_auditor_findings(path)) == self_hosted


# --- signing and attestation ----------------------------------------------------------------------

MERGE_DIGEST = "${{ steps.merge.outputs.digest }}"


def test_sign_and_attest_steps_follow_the_config(case: tuple[Config, Plan, dict[Any, Any]]) -> None:
    config, _, wf = case
    merge = wf["jobs"]["merge"]
    names = [s["name"] for s in merge["steps"]]
    after_merge = names[names.index("Merge the platform images") + 1 :]
    expected = ["Install cosign", "Sign the index with cosign"] if config.ci.sign else []
    expected += [f"Attest the provenance of {n}" for n in config.image.names] if config.ci.attest else []
    assert after_merge == expected
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if step in merge["steps"]:
                continue
            assert "cosign" not in step["name"].lower()
            assert "attest" not in step.get("uses", "")
    for job in builds(wf):
        assert "id-token" not in job["permissions"]
        assert "attestations" not in job["permissions"]


def test_signing_and_attesting_never_happen_for_pull_requests(
    case: tuple[Config, Plan, dict[Any, Any]],
) -> None:
    config, _, wf = case
    merge = wf["jobs"]["merge"]
    assert "github.event_name != 'pull_request'" in merge["if"].split(" && ")
    if config.ci.sign or config.ci.attest:
        text = render(config)
        assert "pull_request_target" not in text
        assert "workflow_run" not in text


def test_signing_uses_the_merge_digest_never_a_tag() -> None:
    config = load_variant("signed")
    merge = parsed(config)["jobs"]["merge"]
    assert merge["outputs"]["digest"] == MERGE_DIGEST
    assert one_step(merge, "Merge")["id"] == "merge"
    assert one_step(merge, "Install cosign")["uses"].startswith("sigstore/cosign-installer@")
    sign = one_step(merge, "Sign the index with cosign")
    assert sign["env"]["DIGEST"] == MERGE_DIGEST
    assert sign["env"]["OIDC_ISSUER"] == "https://token.actions.githubusercontent.com"
    assert [v for k, v in sign["env"].items() if k.startswith("IMAGE_")] == config.image.names
    sign_lines = [line.strip() for line in sign["run"].splitlines() if "cosign sign" in line]
    assert sign_lines == ['cosign sign --yes "$image@$DIGEST"']


def test_attest_steps_name_every_image_fully_qualified() -> None:
    config = load_variant("signed")
    merge = parsed(config)["jobs"]["merge"]
    steps = steps_named(merge, "Attest the provenance of ")
    assert [s["with"]["subject-name"] for s in steps] == ["ghcr.io/acme/app", "index.docker.io/acme/app"]
    for step in steps:
        assert step["uses"].startswith("actions/attest-build-provenance@")
        assert step["with"]["subject-digest"] == MERGE_DIGEST
        assert step["with"]["push-to-registry"] == "true"
        assert step["with"]["create-storage-record"] == "false"


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("ghcr.io/acme/app", "ghcr.io/acme/app"),
        ("acme/app", "index.docker.io/acme/app"),
        ("docker.io/acme/app", "index.docker.io/acme/app"),
        ("registry-1.docker.io/acme/app", "index.docker.io/acme/app"),
        ("nginx", "index.docker.io/library/nginx"),
        ("docker.io/nginx", "index.docker.io/library/nginx"),
        ("localhost:5000/a/b/c", "localhost:5000/a/b/c"),
        ("localhost/app", "localhost/app"),
        ("Quay.IO/acme/app", "quay.io/acme/app"),
    ],
)
def test_attestation_subject(name: str, subject: str) -> None:
    assert attestation_subject(name) == subject


def test_permissions_for_signing_carry_a_reason() -> None:
    text = render(load_variant("signed"))
    assert (
        "id-token: write # keyless signing (cosign, provenance attestation) with the job's OIDC token" in text
    )
    assert "attestations: write # store the build provenance attestation" in text
    sign_only = render(load_variant("sign-only"))
    assert "id-token: write # keyless signing (cosign) with the job's OIDC token" in sign_only
    assert "attestations:" not in sign_only
    attest_only = render(load_variant("attest-only"))
    assert (
        "id-token: write # keyless signing (provenance attestation) with the job's OIDC token" in attest_only
    )
    assert text.count("id-token: write") == 1


def _stub_cosign(tmp_path: Path, *, fail: bool = False) -> Path:
    """A fake ``cosign`` on PATH that appends its argv (JSON) to a log, failing if asked."""
    log = tmp_path / "cosign.jsonl"
    stub = tmp_path / "cosign"
    stub.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit({1 if fail else 0})\n"
    )
    stub.chmod(0o755)
    return log


def _sign_env(step: dict[str, Any], digest: str, summary: Path) -> dict[str, str]:
    env = {k: v for k, v in step["env"].items() if "${{" not in v}
    env.update(
        DIGEST=digest,
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_WORKFLOW_REF="acme/app/.github/workflows/splitbuild.yml@refs/tags/v1.2.3",
    )
    return env


def test_sign_script_signs_every_image_by_digest_and_shows_how_to_verify(tmp_path: Path) -> None:
    config = load_variant("signed")
    step = one_step(parsed(config)["jobs"]["merge"], "Sign the index with cosign")
    log = _stub_cosign(tmp_path)
    summary = tmp_path / "summary.md"
    result = _run_bash(step["run"], _sign_env(step, DIGESTS[7], summary), tmp_path)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["sign", "--yes", f"{name}@{DIGESTS[7]}"] for name in config.image.names]
    text = summary.read_text()
    identity = "https://github.com/acme/app/.github/workflows/splitbuild.yml@refs/tags/v1.2.3"
    commands = re.findall(
        r"cosign verify (\S+) \\\n  --certificate-identity (\S+) \\\n  "
        r"--certificate-oidc-issuer (\S+)\n",
        text,
    )
    assert commands == [
        (f"{name}@{DIGESTS[7]}", identity, "https://token.actions.githubusercontent.com")
        for name in config.image.names
    ]
    # The printed command is shell: run it through the shell and it is the argv cosign expects.
    first = text[text.index("cosign verify") : text.index("\n", text.index("--certificate-oidc-issuer"))]
    assert shlex.split(first.replace("\\\n", " ")) == [
        "cosign",
        "verify",
        f"{config.image.names[0]}@{DIGESTS[7]}",
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    ]


def test_sign_summary_quotes_what_the_shell_would_split(tmp_path: Path) -> None:
    step = one_step(parsed(load_variant("signed"))["jobs"]["merge"], "Sign the index with cosign")
    _stub_cosign(tmp_path)
    summary = tmp_path / "summary.md"
    env = _sign_env(step, DIGESTS[2], summary)
    env["GITHUB_WORKFLOW_REF"] = "acme/app/.github/workflows/splitbuild.yml@refs/heads/odd branch;$(x)"
    result = _run_bash(step["run"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    text = summary.read_text()
    line = text[text.index("cosign verify") : text.index("\n", text.index("--certificate-oidc-issuer"))]
    words = shlex.split(line.replace("\\\n", " "))
    assert (
        words[4] == "https://github.com/acme/app/.github/workflows/splitbuild.yml@refs/heads/odd branch;$(x)"
    )


@pytest.mark.parametrize("digest", ["", "sha256:1234", "latest", "sha512:" + "a" * 128])
def test_sign_script_refuses_anything_but_a_digest(digest: str, tmp_path: Path) -> None:
    step = one_step(parsed(load_variant("signed"))["jobs"]["merge"], "Sign the index with cosign")
    log = _stub_cosign(tmp_path)
    summary = tmp_path / "summary.md"
    result = _run_bash(step["run"], _sign_env(step, digest, summary), tmp_path)
    assert result.returncode != 0
    assert "::error::the merge step gave no index digest to sign" in result.stdout
    assert not log.exists()
    assert not summary.exists()


def test_a_failed_signature_fails_the_job_before_the_summary(tmp_path: Path) -> None:
    step = one_step(parsed(load_variant("signed"))["jobs"]["merge"], "Sign the index with cosign")
    log = _stub_cosign(tmp_path, fail=True)
    summary = tmp_path / "summary.md"
    result = _run_bash(step["run"], _sign_env(step, DIGESTS[1], summary), tmp_path)
    assert result.returncode != 0
    assert len(log.read_text().splitlines()) == 1
    assert not summary.exists()


def test_pins_of_a_signed_workflow() -> None:
    config = load_variant("signed")
    actions = [p.action for p in build_workflow(config, plan(config)).pins()]
    assert actions[-2:] == ["sigstore/cosign-installer", "actions/attest-build-provenance"]
    assert all_pins()["sigstore/cosign-installer"].sha == "6f9f17788090df1f26f669e9d70d6ae9567deba6"
    assert all_pins()["actions/attest-build-provenance"].sha == "a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32"


# --- pull request previews ---------------------------------------------------------------------


def _stub_delete(tmp_path: Path, codes: dict[str, int]) -> Path:
    """A fake ``splitbuild`` that records each call and exits with the code given for its ref."""
    record = tmp_path / "calls.txt"
    stub = tmp_path / "splitbuild"
    stub.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit({codes!r}.get(sys.argv[-1], 0))\n"
    )
    stub.chmod(0o755)
    return record


def test_previews_publish_pr_n_for_same_repository_pull_requests_and_delete_it_on_close(
    tmp_path: Path,
) -> None:
    config = load_variant("previews")
    the_plan = plan(config)
    wf = parsed(config)
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert wf["on"]["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    for _, job in build_jobs(wf, the_plan):
        assert job["if"] == "github.event.action != 'closed'"  # a closed pull request builds nothing
        build = next(step for step in job["steps"] if "cache-to" in step.get("with", {}))
        # a preview pushes, but never writes the registry cache release builds read
        assert build["with"]["cache-to"].startswith(
            "${{ github.event_name != 'pull_request' && 'type=registry"
        )
    preview, cleanup = wf["jobs"]["preview"], wf["jobs"]["preview-cleanup"]
    assert preview["needs"] == [build_job_id(leg) for leg in the_plan.legs]
    assert preview["if"] == (
        "!cancelled() && github.event_name == 'pull_request' && github.event.action != 'closed' && "
        f"{same_repo} && needs.build-linux-amd64.result == 'success'"
    )
    assert "environment" not in preview  # pull request refs do not pass environment protection
    assert (
        cleanup["if"]
        == f"github.event_name == 'pull_request' && github.event.action == 'closed' && {same_repo}"
    )
    assert "needs" not in cleanup
    # The preview merges with the pr rule alone (no flavor: no latest), like the merge otherwise.
    step = one_step(preview, "Merge the preview")
    assert step["env"]["TAG_RULES"] == "type=ref,event=pr"
    assert "FLAVOR_RULES" not in step["env"]
    record = _stub_splitbuild(tmp_path)
    env = {k: v for k, v in step["env"].items() if "${{" not in v}
    env |= {"DIGEST_LINUX_AMD64": DIGESTS[0], "DIGEST_LINUX_ARM64": DIGESTS[1]}
    assert _run_bash(step["run"], env, tmp_path).returncode == 0
    argv = json.loads(record.read_text())
    assert argv[argv.index("--tags") + 1] == "type=ref,event=pr"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--image"] == config.image.names
    assert argv[-2:] == DIGESTS[:2]
    # The clean-up deletes pr-<N> in every image repository; one never pushed (exit 4) is fine.
    delete = one_step(cleanup, "Delete the preview")
    assert delete["env"]["PREVIEW_TAG"] == "pr-${{ github.event.pull_request.number }}"
    names = [one_step(cleanup, "Install")["name"], *(s["name"] for s in steps_named(cleanup, "Log in"))]
    assert names == ["Install splitbuild (before any login)", "Log in to ghcr.io", "Log in to quay.io"]
    env = {k: v for k, v in delete["env"].items() if "${{" not in v} | {"PREVIEW_TAG": "pr-7"}
    calls = _stub_delete(tmp_path, {"ghcr.io/acme/app:pr-7": 4})
    done = _run_bash(delete["run"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no preview ghcr.io/acme/app:pr-7: nothing to delete" in done.stdout
    lines = calls.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        ["delete", "ghcr.io/acme/app:pr-7"],
        ["delete", "quay.io/acme/app:pr-7"],
    ]
    calls.unlink()
    _stub_delete(tmp_path, {"ghcr.io/acme/app:pr-7": 5})
    failed = _run_bash(delete["run"], env, tmp_path)
    assert failed.returncode == 5  # a real failure fails the job, after trying every repository
    assert len(calls.read_text().splitlines()) == 2


def test_without_previews_no_pull_request_job_and_no_closed_trigger() -> None:
    wf = parsed(load_variant("minimal-ghcr"))
    assert "types" not in wf["on"]["pull_request"]
    assert not set(PREVIEW_JOBS) & set(wf["jobs"])
    assert all("if" not in job for name, job in wf["jobs"].items() if name.startswith("build-"))


def test_previews_need_pull_requests() -> None:
    with pytest.raises(ConfigError, match="previews = true needs pull-requests = true"):
        parse_config(
            '[image]\nnames = ["ghcr.io/a/b"]\nplatforms = ["linux/amd64"]\n'
            "[ci]\npull-requests = false\npreviews = true\n"
        )
