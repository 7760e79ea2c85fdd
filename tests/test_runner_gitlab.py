"""The generated GitLab pipeline run by a real CI runner: ``gitlab-ci-local`` (npm, 4.73.0) with
``--force-shell-executor``, the ``.gitlab-ci.yml`` exactly as ``splitbuild generate`` writes it,
real buildah (linux/amd64 natively, linux/arm64 under qemu-user-static), the real merge job
(its own venv, the hash-locked closure and a wheel of this checkout, installed offline as the job
installs them; then ``splitbuild merge``) and the test registry with htpasswd auth.

Nothing is stubbed. gitlab-ci-local runs shell jobs on this machine, so the events are set the
way it allows: ``CI_PIPELINE_SOURCE`` (and for tags ``CI_COMMIT_TAG``) as ``--variable``; it sets
``GITLAB_CI=false`` unless told otherwise, so ``GITLAB_CI=true`` is passed too. The only extra on
``PATH`` is, in the interleaving test, a pass-through ``buildah`` wrapper that changes timing
(it holds one job's push until the other pipeline has built), never arguments or results.

What these runs cannot show: GitLab's own server (rules evaluated by GitLab rather than by
gitlab-ci-local, protected variables, the job token, dotenv artifacts uploaded to GitLab), the
docker-in-docker (buildx) builder, and runners whose executor is docker or kubernetes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from splitbuild import __version__
from splitbuild.tags import Inputs, compute_metadata, parse_rule_lines
from splitbuild.tags.schema import Context
from tests.constants import TEST_PASSWORD, TEST_USER
from tests.packaging_support import build_wheel, locked_wheels
from tests.qemu import ensure_emulation
from tests.registry_server import RegistryServer

REPO = Path(__file__).resolve().parent.parent
HELLO = REPO / "examples" / "hello"
GITLAB_CI_LOCAL = shutil.which("gitlab-ci-local")
RULES = ["type=ref,event=branch", "type=semver,pattern={{version}}", "type=sha", "type=ref,event=pr"]
# ELF e_machine of each platform's busybox
MACHINE = {"linux/amd64": 62, "linux/arm64": 183}


def _skopeo(*args: str) -> str:
    src = "--src-" if args[0] == "copy" else "--"
    options = [f"{src}tls-verify=false", f"{src}creds={TEST_USER}:{TEST_PASSWORD}"]
    argv = ["skopeo", *args[:1], *options, *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def _tags(registry: RegistryServer, repository: str) -> set[str]:
    argv = ["skopeo", "list-tags", "--tls-verify=false", f"--creds={TEST_USER}:{TEST_PASSWORD}"]
    result = subprocess.run(
        [*argv, f"docker://{registry.host}/{repository}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        # a repository never pushed to, or (pushed by digest only) one without tags
        unknown = ("name unknown", "404 (not found)")
        assert "NAME_UNKNOWN" in result.stderr or any(t in result.stderr.lower() for t in unknown), (
            result.stderr
        )
        return set()
    return set(json.loads(result.stdout)["Tags"])


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60, check=True, env=env
    ).stdout.strip()


def _config(
    image: str,
    registry: RegistryServer,
    platforms: list[str],
    optional: list[str] | None = None,
    previews: bool = False,
) -> str:
    rules = ", ".join(json.dumps(rule) for rule in RULES)
    return f"""\
[image]
names = ["{image}"]
platforms = {json.dumps(platforms)}
optional-platforms = {json.dumps(optional or [])}
context = "."
build-args = {{ WORK = "2000" }}
[tags]
rules = [{rules}]
[ci]
provider = "gitlab"
previews = {json.dumps(previews)}
branches = ["main"]
tags = ["v*"]
cache = "none"
[ci.logins."{registry.host}"]
username-var = "REG_USER"
password-secret = "REG_PASSWORD"
[ci.gitlab]
builder = "buildah"
insecure-registries = ["{registry.host}"]
"""


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox root file systems of examples/hello, from the cached packages (no network)."""
    ensure_emulation("arm64")
    dest = tmp_path_factory.mktemp("rootfs")
    subprocess.run(
        [
            sys.executable,
            str(HELLO / "prepare.py"),
            "--offline",
            "--platform",
            ",".join(MACHINE),
            "--dest",
            str(dest),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dest / "rootfs" if (dest / "rootfs").is_dir() else dest


@pytest.fixture(scope="module")
def splitbuild_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's splitbuild as a wheel, which the merge jobs install (``splitbuild==X``)."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def storage(tmp_path: Path, splitbuild_wheel: Path) -> dict[str, str]:
    """A buildah store of its own (vfs), so these runs share nothing with other tests; and pip
    offline for the merge jobs' installs: the hash-locked closure and the splitbuild wheel."""
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path / "graph"}"\nrunroot = "{tmp_path / "runroot"}"\n'
    )
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir()
    return {
        "CONTAINERS_STORAGE_CONF": str(conf),
        "XDG_RUNTIME_DIR": str(runtime),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": f"{locked_wheels()} {splitbuild_wheel}",
    }


def _project(
    path: Path,
    rootfs: Path,
    image: str,
    registry: RegistryServer,
    platforms: list[str],
    *,
    optional: list[str] | None = None,
    previews: bool = False,
    extra_config: str = "",
    extra_dockerfile: str = "",
) -> Path:
    """A git repository with the hello example and the pipeline ``splitbuild generate`` writes."""
    path.mkdir(parents=True)
    (path / "Dockerfile").write_text((HELLO / "Dockerfile").read_text() + extra_dockerfile)
    shutil.copytree(HELLO / "app", path / "app")
    shutil.copytree(rootfs, path / "rootfs")
    (path / "splitbuild.toml").write_text(
        _config(image, registry, platforms, optional, previews) + extra_config
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "splitbuild", "generate", "--config", "splitbuild.toml"],
        cwd=path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert (path / ".gitlab-ci.yml").is_file()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "ci@example.invalid")
    _git(path, "config", "user.name", "CI")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", f"hello {image}")
    return path


def _run(
    project: Path,
    storage: Mapping[str, str],
    variables: Mapping[str, str],
    extra_path: Path | None = None,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """One pipeline, as gitlab-ci-local runs it (shell executor), in ``project``."""
    assert GITLAB_CI_LOCAL is not None, (
        "gitlab-ci-local is not installed (npm install -g gitlab-ci-local@4.73.0)"
    )
    argv = [
        GITLAB_CI_LOCAL,
        "--force-shell-executor",
        "--json-schema-validation",
        "--variable",
        "GITLAB_CI=true",
    ]
    argv += ["--variable", f"REG_USER={TEST_USER}", "--variable", f"REG_PASSWORD={TEST_PASSWORD}"]
    for name, value in variables.items():
        argv += ["--variable", f"{name}={value}"]
    argv += args
    path = os.environ["PATH"] if extra_path is None else f"{extra_path}{os.pathsep}{os.environ['PATH']}"
    env = {
        **os.environ,
        **storage,
        "PATH": path,
        "GCL_IGNORE_PREDEFINED_VARS": "GITLAB_CI,CI_PROJECT_ID",
    }
    env.pop("REGISTRY_AUTH_FILE", None)
    env.pop("PYTHONPATH", None)  # the merge jobs run the splitbuild they install
    return subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _index(registry: RegistryServer, repository: str, tag: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        _skopeo("inspect", "--raw", f"docker://{registry.host}/{repository}:{tag}")
    )
    return data


def _check_child(
    registry: RegistryServer, repository: str, platform: str, digest: str, tmp: Path
) -> dict[str, Any]:
    """The child's config says ``platform`` and its busybox really is a binary for it."""
    ref = f"docker://{registry.host}/{repository}@{digest}"
    config: dict[str, Any] = json.loads(_skopeo("inspect", "--config", ref))
    assert f"{config['os']}/{config['architecture']}" == platform
    layout = tmp / f"layout-{digest[7:19]}"
    _skopeo("copy", ref, f"oci:{layout}:x")
    manifest = json.loads(
        _blob(layout, json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])
    )
    machines = set()
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"][7:]) as archive:
            for member in archive.getmembers():
                if member.name.lstrip("./") == "bin/busybox" and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    head = handle.read(20)
                    machines.add(int.from_bytes(head[18:20], "little"))
    assert machines == {MACHINE[platform]}
    return config


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest[7:]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def _expected_tags(image: str, env: Mapping[str, str]) -> set[str]:
    metadata = compute_metadata(
        Inputs(images=[image], tags=parse_rule_lines(RULES)),
        Context.from_environment({**env, "GITLAB_CI": "true"}),
    )
    return {tag.rsplit(":", 1)[1] for tag in metadata.tags}


def _no_leftovers(storage: Mapping[str, str]) -> None:
    """No credentials in the runner's default auth file, no local image left in the store."""
    assert not (Path(storage["XDG_RUNTIME_DIR"]) / "containers" / "auth.json").exists()
    images = subprocess.run(
        ["buildah", "images", "--format", "{{.Name}}"],
        env={**os.environ, **storage, "STORAGE_DRIVER": "vfs"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert [name for name in images if "splitbuild" in name] == []


def _passed(result: subprocess.CompletedProcess[str], *jobs: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    for job in jobs:
        assert f"PASS  {job}" in out, out[-4000:]
    assert TEST_PASSWORD not in out


def test_push_merge_request_tag_and_web_pipelines(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """Push to main publishes an index of exactly both platforms under the tags metadata-action
    computes (no staging tags); a merge request that builds FROM that private image logs in,
    builds and writes nothing; a tag publishes its version tags; "Run pipeline" on a branch named
    ``latest`` runs no job and publishes nothing."""
    repository = "acme/hello-gitlab"
    image = f"{auth_registry.host}/{repository}"
    platforms = list(MACHINE)
    project = _project(tmp_path / "project", rootfs, image, auth_registry, platforms)
    sha = _git(project, "rev-parse", "HEAD")
    builds = [f"splitbuild:build:{platform}" for platform in platforms]

    result = _run(project, storage, {})
    _passed(result, *builds, "splitbuild:merge")
    # the merge ran the splitbuild it installed: the wheel, after the locked closure and pip check
    merge_log = [line for line in result.stdout.splitlines() if line.startswith("splitbuild:merge ")]
    installed = [line for line in merge_log if "Successfully installed" in line]
    assert len(installed) == 2, merge_log
    assert "pydantic-core-" in installed[0]
    assert installed[1].split("Successfully installed")[1].split() == [f"splitbuild-{__version__}"]
    assert any("No broken requirements found." in line for line in merge_log), merge_log
    push_env = {"CI_COMMIT_SHA": sha, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    expected = _expected_tags(image, {**push_env, "CI_DEFAULT_BRANCH": "main"})
    assert expected == {"main", f"sha-{sha[:7]}"}
    assert _tags(auth_registry, repository) == expected
    index = _index(auth_registry, repository, "main")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    children = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
    }
    assert sorted(children) == sorted(platforms)
    for platform, digest in children.items():
        config = _check_child(auth_registry, repository, platform, digest, tmp_path)
        assert config["config"]["Labels"]["org.opencontainers.image.revision"] == sha
    _no_leftovers(storage)

    # A merge request whose Dockerfile starts FROM the private image just published.
    _git(project, "checkout", "-q", "-b", "feature")
    (project / "Dockerfile").write_text(f'FROM {image}:main\nRUN ["/bin/busybox", "true"]\n')
    _git(project, "commit", "-q", "-am", "from the private image")
    before = {tag: _index(auth_registry, repository, tag) for tag in _tags(auth_registry, repository)}
    mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    mr |= {"CI_MERGE_REQUEST_IID": "7", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature"}
    result = _run(project, storage, mr)
    _passed(result, *builds)
    assert "splitbuild:merge" not in result.stdout
    assert {tag: _index(auth_registry, repository, tag) for tag in _tags(auth_registry, repository)} == before
    _no_leftovers(storage)

    # "Run pipeline" on a branch named latest: no job, nothing published.
    _git(project, "checkout", "-q", "-b", "latest", "main")
    result = _run(project, storage, {"CI_PIPELINE_SOURCE": "web"})
    assert "splitbuild:build" not in result.stdout.replace("never", ""), result.stdout[-3000:]
    assert "latest" not in _tags(auth_registry, repository)
    _no_leftovers(storage)

    # A release tag on main.
    _git(project, "checkout", "-q", "main")
    tag_env = {"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_BRANCH": "", "CI_COMMIT_REF_NAME": "v1.2.3"}
    result = _run(project, storage, tag_env)
    _passed(result, *builds, "splitbuild:merge")
    expected_tag = _expected_tags(image, {"CI_COMMIT_SHA": sha, "CI_PIPELINE_SOURCE": "push", **tag_env})
    assert expected_tag == {"1.2.3", "latest", f"sha-{sha[:7]}"}  # flavor latest=auto
    assert _tags(auth_registry, repository) == expected | expected_tag
    assert sorted(
        m["platform"]["architecture"] for m in _index(auth_registry, repository, "1.2.3")["manifests"]
    ) == [
        "amd64",
        "arm64",
    ]


def test_a_failing_optional_leg_still_gives_a_merged_index_of_the_others(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """arm64 is optional and its build fails (``allow_failure``): the merge job still runs, on the
    amd64 digest alone, publishes an index of amd64 and reports arm64 as left out."""
    repository = "acme/hello-optional"
    image = f"{auth_registry.host}/{repository}"
    platforms = list(MACHINE)
    fail_arm64 = 'RUN [ "$(uname -m)" != aarch64 ]\n'
    project = _project(
        tmp_path / "project",
        rootfs,
        image,
        auth_registry,
        platforms,
        optional=["linux/arm64"],
        extra_dockerfile=fail_arm64,
    )
    pipeline = (project / ".gitlab-ci.yml").read_text()
    assert "allow_failure: true" in pipeline
    result = _run(project, storage, {})
    out = result.stdout + result.stderr
    assert "PASS  splitbuild:build:linux/amd64" in out, out[-4000:]
    assert "WARN  splitbuild:build:linux/arm64" in out, out[-4000:]
    assert "PASS  splitbuild:merge" in out, out[-4000:]
    assert result.returncode == 0, out[-4000:]
    assert TEST_PASSWORD not in out
    merged = json.loads((project / "splitbuild-merge.json").read_text())
    assert merged["leftOut"] == ["linux/arm64"]
    dotenv = (project / "splitbuild-merge.env").read_text().splitlines()
    assert dotenv == [f"SPLITBUILD_DIGEST={merged['digest']}", "SPLITBUILD_LEFT_OUT=linux/arm64"]
    assert "splitbuild: warning: published without the optional platforms linux/arm64" in out
    sha = _git(project, "rev-parse", "HEAD")
    assert _tags(auth_registry, repository) == {"main", f"sha-{sha[:7]}"}
    index = _index(auth_registry, repository, "main")
    assert [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]] == [
        "linux/amd64"
    ]
    _no_leftovers(storage)


def test_merge_request_preview_is_published_and_its_stop_job_deletes_it(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """previews: a fork's merge request pushes nothing; one from this project pushes both platforms
    and its preview job publishes ``mr-7`` (no other tag); the environment's stop job (run by hand,
    as GitLab runs it when the merge request closes) deletes the tag, the index and its children."""
    repository = "acme/hello-preview"
    image = f"{auth_registry.host}/{repository}"
    platforms = list(MACHINE)
    project = _project(tmp_path / "project", rootfs, image, auth_registry, platforms, previews=True)
    _git(project, "checkout", "-q", "-b", "feature")
    mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    mr |= {
        "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_PROJECT_ID": "42",
    }
    # A fork's merge request, in the fork's own pipeline (GitLab's default): CI_PROJECT_ID is the fork's.
    in_the_fork = {**mr, "CI_PROJECT_ID": "43", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "43"}
    fork = _run(project, storage, in_the_fork)
    _passed(fork, *(f"splitbuild:build:{p}" for p in platforms))
    assert "splitbuild:preview" not in fork.stdout
    assert _tags(auth_registry, repository) == set()
    same = {**mr, "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "42"}
    result = _run(project, storage, same)
    _passed(result, *(f"splitbuild:build:{p}" for p in platforms), "splitbuild:preview")
    assert _tags(auth_registry, repository) == {"mr-7"}
    index = _index(auth_registry, repository, "mr-7")
    children = [m["digest"] for m in index["manifests"]]
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    stop = _run(
        project, storage, same, args=["--manual", "splitbuild:preview:stop", "splitbuild:preview:stop"]
    )
    _passed(stop, "splitbuild:preview:stop")
    assert _tags(auth_registry, repository) == set()
    for digest in children:
        gone = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"--creds={TEST_USER}:{TEST_PASSWORD}",
                f"docker://{image}@{digest}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert gone.returncode != 0, digest
    _no_leftovers(storage)


_WRAPPER = """\
#!/bin/sh
# Timing only: hold a push until the other pipeline has built; arguments and results unchanged.
if [ "$1" = push ] && [ -n "${SYNC_WAIT:-}" ]; then
  i=0
  while [ ! -e "$SYNC_WAIT" ] && [ "$i" -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
fi
status=0
REAL_BUILDAH "$@" || status=$?
if [ "$1" = build ] && [ -n "${SYNC_SIGNAL:-}" ]; then touch "$SYNC_SIGNAL"; fi
exit "$status"
"""


def test_two_pipelines_on_one_buildah_store_publish_only_their_own_images(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """Pipeline A builds, then waits while pipeline B builds on the same store, then pushes: A's
    index must still hold A's image (its commit's revision label), B's index B's."""
    real = shutil.which("buildah")
    assert real is not None
    wrapper_dir = tmp_path / "wrapper"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "buildah"
    wrapper.write_text(_WRAPPER.replace("REAL_BUILDAH", real))
    wrapper.chmod(0o755)
    signal = tmp_path / "b-built"
    projects = {}
    for name in ("a", "b"):
        image = f"{auth_registry.host}/acme/interleave-{name}"
        projects[name] = _project(tmp_path / name, rootfs, image, auth_registry, ["linux/amd64"])
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(name: str, sync: dict[str, str]) -> None:
        results[name] = _run(projects[name], {**storage, **sync}, {}, extra_path=wrapper_dir)

    thread_a = threading.Thread(target=run, args=("a", {"SYNC_WAIT": str(signal)}))
    thread_a.start()
    run("b", {"SYNC_SIGNAL": str(signal)})
    thread_a.join(timeout=300)
    for name, project in projects.items():
        _passed(results[name], "splitbuild:build:linux/amd64", "splitbuild:merge")
        sha = _git(project, "rev-parse", "HEAD")
        index = _index(auth_registry, f"acme/interleave-{name}", "main")
        (child,) = index["manifests"]
        config = _check_child(
            auth_registry, f"acme/interleave-{name}", "linux/amd64", child["digest"], tmp_path
        )
        assert config["config"]["Labels"]["org.opencontainers.image.revision"] == sha, name
        assert _tags(auth_registry, f"acme/interleave-{name}") == {"main", f"sha-{sha[:7]}"}
    assert signal.exists()
    _no_leftovers(storage)


STAND_INS = REPO / "tests" / "stand_ins"
CHECKS = """
[test]
command = "hello | tee /dev/stderr | grep -q 'hello from'"
[test.platforms]
"linux/arm64" = ["/bin/sh", "-c", "echo smoke test on $(uname -m); [ $(uname -m) = aarch64 ]"]
[scan]
severity = "high"
"""


def test_smoke_tests_pass_and_a_scan_finding_stops_the_merge(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """[test] runs in each build job's image before its push (arm64 under QEMU); the scan jobs
    read the archives the build jobs hand them with trivy (the stand-in in tests/stand_ins: the
    real one and its database cannot be downloaded here); arm64's image holds a file the
    stand-in's database knows as HIGH, so its scan job fails and the merge never runs."""
    repository = "acme/hello-gitlab-checks"
    image = f"{auth_registry.host}/{repository}"
    vulnerable = '\nRUN if [ "$(uname -m)" = aarch64 ]; then touch /etc/hello/vulnerable; fi\n'
    project = _project(
        tmp_path / "project",
        rootfs,
        image,
        auth_registry,
        list(MACHINE),
        extra_config=CHECKS,
        extra_dockerfile=vulnerable,
    )
    result = _run(project, storage, {}, extra_path=STAND_INS)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-4000:]
    for job in (
        "splitbuild:build:linux/amd64",
        "splitbuild:build:linux/arm64",
        "splitbuild:scan:linux/amd64",
    ):
        assert f"PASS  {job}" in out, out[-4000:]
    assert "FAIL  splitbuild:scan:linux/arm64" in out, out[-4000:]
    assert "smoke test on aarch64" in out
    assert "hello from x86_64" in out
    assert "linux/arm64: 1 finding(s) at or above high (trivy)" in out
    assert "linux/amd64: 0 finding(s) at or above high (trivy)" in out
    assert "splitbuild:merge" not in out.replace("splitbuild:merge never", "")
    assert _tags(auth_registry, repository) == set()
    reports = {
        p.name: json.loads(p.read_text()) for p in project.rglob("gl-container-scanning-report-*.json")
    }
    assert [v["id"] for v in reports["gl-container-scanning-report-linux-arm64.json"]["vulnerabilities"]] == [
        "CVE-2099-0001"
    ]
    assert reports["gl-container-scanning-report-linux-amd64.json"]["vulnerabilities"] == []
    assert TEST_PASSWORD not in out
    _no_leftovers(storage)


def test_an_optional_leg_whose_scan_finds_something_is_left_out(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """arm64 is optional and its image holds what the stand-in trivy's database knows as HIGH: its
    scan job fails (``allow_failure``) and says so in its dotenv report, so the merge drops arm64's
    digest (already pushed by digest, untagged) and publishes amd64 alone, reporting arm64 as left
    out, exit 0."""
    repository = "acme/hello-gitlab-optional-scan"
    image = f"{auth_registry.host}/{repository}"
    vulnerable = '\nRUN if [ "$(uname -m)" = aarch64 ]; then touch /etc/hello/vulnerable; fi\n'
    project = _project(
        tmp_path / "project",
        rootfs,
        image,
        auth_registry,
        list(MACHINE),
        optional=["linux/arm64"],
        extra_config='[scan]\nseverity = "high"\n',
        extra_dockerfile=vulnerable,
    )
    result = _run(project, storage, {}, extra_path=STAND_INS)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    passed = ("splitbuild:build:linux/amd64", "splitbuild:build:linux/arm64", "splitbuild:scan:linux/amd64")
    for job in passed:
        assert f"PASS  {job}" in out, out[-4000:]
    assert "WARN  splitbuild:scan:linux/arm64" in out, out[-4000:]
    assert "PASS  splitbuild:merge" in out, out[-4000:]
    assert "linux/arm64: 1 finding(s) at or above high (trivy)" in out
    merged = json.loads((project / "splitbuild-merge.json").read_text())
    assert merged["leftOut"] == ["linux/arm64"]
    sha = _git(project, "rev-parse", "HEAD")
    assert _tags(auth_registry, repository) == {"main", f"sha-{sha[:7]}"}
    index = _index(auth_registry, repository, "main")
    assert [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]] == [
        "linux/amd64"
    ]
    assert TEST_PASSWORD not in out
    _no_leftovers(storage)


def test_an_optional_leg_whose_build_fails_is_left_out_with_scans_on(
    auth_registry: RegistryServer, rootfs: Path, storage: dict[str, str], tmp_path: Path
) -> None:
    """With ``[scan]``, an optional leg whose build fails has nothing to scan: its scan job fails
    too (``allow_failure``), and the merge publishes amd64 alone."""
    repository = "acme/hello-gitlab-optional-build-scan"
    image = f"{auth_registry.host}/{repository}"
    project = _project(
        tmp_path / "project",
        rootfs,
        image,
        auth_registry,
        list(MACHINE),
        optional=["linux/arm64"],
        extra_config='[scan]\nseverity = "high"\n',
        extra_dockerfile='RUN [ "$(uname -m)" != aarch64 ]\n',
    )
    result = _run(project, storage, {}, extra_path=STAND_INS)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "WARN  splitbuild:build:linux/arm64" in out, out[-4000:]
    assert "PASS  splitbuild:merge" in out, out[-4000:]
    merged = json.loads((project / "splitbuild-merge.json").read_text())
    assert merged["leftOut"] == ["linux/arm64"]
    index = _index(auth_registry, repository, "main")
    assert [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]] == [
        "linux/amd64"
    ]
    _no_leftovers(storage)
