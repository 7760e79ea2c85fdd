"""A corpus of bad invocations of the real ``splitbuild`` process, across every command: each gives a
one-line error (``splitbuild: error: ...``, possibly a ``hint:`` line) and the exit code the README
documents, never a traceback.

Bad references, missing files, malformed digests directories, unknown platforms, invalid TOML,
bad environment settings, and misbehaving registries: manifests over 4 MiB, HTML or invalid JSON
where manifests, tag lists or tokens should be (``tests.faults.ScriptedServer`` on loopback).
The processes run concurrently (they are independent), once per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.models import OCI_INDEX, OCI_MANIFEST
from tests.cli_support import run
from tests.faults import Reply, ScriptedServer
from tests.images import make_image
from tests.registry_server import free_port

ROOT = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
IMAGE = make_image("linux/amd64", seed="bad-input")


@dataclass(frozen=True)
class Case:
    """``args`` may use ``{srv}`` (the scripted registry), ``{tmp}`` (prepared files), ``{dead}``
    (a loopback port nothing listens on). ``says`` is part of the error line."""

    id: str
    args: tuple[str, ...]
    exit_code: int
    says: str
    env: dict[str, str] = field(default_factory=dict)


def case(name: str, args: str | tuple[str, ...], exit_code: int, says: str, **env: str) -> Case:
    return Case(name, tuple(args.split()) if isinstance(args, str) else args, exit_code, says, env)


CASES = [
    # -- references (exit 3) ---------------------------------------------------------------
    case("inspect-uppercase", "inspect foo/Bar:v1", 3, "invalid reference 'foo/Bar:v1'"),
    case("inspect-bad-tag", ("inspect", "ghcr.io/acme/app:bad tag"), 3, "invalid reference"),
    case("inspect-short-digest", "inspect ghcr.io/acme/app@sha256:abc", 3, "invalid reference"),
    case("ls-empty", ("ls", ""), 3, "invalid reference ''"),
    case("copy-bad-destination", "copy {dead}/acme/app:v1 Acme/App", 3, "invalid reference 'Acme/App'"),
    case("tag-bad-new-tag", ("tag", "{dead}/acme/app:v1", "bad tag!"), 3, "'bad tag!'"),
    case("delete-bad-reference", "delete ghcr.io//app:v1", 3, "invalid reference"),
    case("prune-bad-repository", "prune ghcr.io/acme/app@@x --keep-last 1", 3, "invalid reference"),
    case("merge-bad-target", f"merge -t ghcr.io/Acme/app:v1 {DIGEST}", 3, "invalid reference"),
    # a valid reference, but neither a tag nor a digest: a usage error
    case("merge-source-without-tag", "merge -t {dead}/acme/app:v1 not-a-digest", 2, "not-a-digest"),
    case("merge-bad-digest", "merge -t {dead}/acme/app:v1 sha256:XYZ", 3, "sha256:XYZ"),
    case("build-bad-output", "build -c {tmp}/valid.toml -o Bad/Output", 3, "Bad/Output"),
    # -- missing files ---------------------------------------------------------------------
    case("inspect-missing-layout", "inspect oci:{tmp}/no-such-layout:v1", 4, "no-such-layout"),
    case("copy-missing-layout", "copy oci:{tmp}/no-such-layout:v1 oci:{tmp}/out:v1", 4, "no-such-layout"),
    case("ls-missing-layout", "ls oci:{tmp}/no-such-layout", 4, "no-such-layout"),
    case(
        "merge-missing-digests-dir",
        "merge -t {dead}/acme/app:v1 --digests-dir {tmp}/none",
        3,
        "not a directory",
    ),
    case("plan-missing-config", "plan -c {tmp}/none.toml", 3, "config file not found"),
    case("generate-missing-config", "generate -c {tmp}/none.toml", 3, "config file not found"),
    case("pins-missing-config", "pins -c {tmp}/none.toml", 3, "config file not found"),
    case("build-missing-config", "build -c {tmp}/none.toml", 3, "config file not found"),
    case("tags-missing-context", "tags --images acme/app --context {tmp}/none.json", 3, "none.json"),
    case("merge-missing-context", "merge --image {dead}/acme/app --context {tmp}/none.json", 3, "none.json"),
    # -- malformed digests directories -----------------------------------------------------
    case(
        "digests-dir-garbage-name",
        "merge -t {dead}/acme/app:v1 --digests-dir {tmp}/digests-garbage",
        3,
        "'garbage'",
    ),
    case(
        "digests-dir-bad-content", "merge -t {dead}/acme/app:v1 --digests-dir {tmp}/digests-bad", 3, "'amd64'"
    ),
    case(
        "digests-dir-empty",
        "merge -t {dead}/acme/app:v1 --digests-dir {tmp}/digests-empty",
        3,
        "no digest files",
    ),
    case(
        "digests-dir-is-a-file",
        "merge -t {dead}/acme/app:v1 --digests-dir {tmp}/valid.toml",
        3,
        "not a directory",
    ),
    # -- unknown platforms -----------------------------------------------------------------
    case(
        "merge-bad-platform",
        f"merge -t {{dead}}/acme/app:v1 --platform linux/amd64,amd64 {DIGEST}",
        3,
        "'amd64'",
    ),
    case("copy-bad-platform", "copy {srv}/good:v1 {srv}/copy --platform linux", 3, "'linux'"),
    case("verify-bad-platform", "verify {dead}/acme/app:v1 --platform linux//arm", 3, "'linux//arm'"),
    case("inspect-bad-platform", "inspect {srv}/good:v1 --platform a/b/c/d", 3, "'a/b/c/d'"),
    case(
        "init-bad-platform", "init --path {tmp}/init.toml --image ghcr.io/acme/app --platform x86", 3, "x86"
    ),
    case("plan-windows-platform", "plan -c {tmp}/windows.toml", 3, "windows/amd64"),
    case(
        "copy-platform-not-in-index",
        "copy {srv}/good:v1 {srv}/copy:v1 --platform linux/s390x",
        4,
        "linux/s390x",
    ),
    # -- invalid TOML and config -----------------------------------------------------------
    case("plan-invalid-toml", "plan -c {tmp}/broken.toml", 3, "invalid TOML"),
    case("generate-invalid-toml", "generate -c {tmp}/broken.toml", 3, "invalid TOML"),
    case("pins-invalid-toml", "pins -c {tmp}/broken.toml", 3, "invalid TOML"),
    case("build-invalid-toml", "build -c {tmp}/broken.toml", 3, "invalid TOML"),
    case("plan-unknown-key", "plan -c {tmp}/unknown-key.toml", 3, "unknown key 'colour'"),
    case("plan-not-utf8", "plan -c {tmp}/latin1.toml", 3, "not UTF-8"),
    case("tags-invalid-context-json", "tags --images acme/app --context {tmp}/broken.json", 3, "broken.json"),
    case(
        "tags-bad-rule", "tags --images acme/app --tags type=bogus --context {tmp}/context.json", 3, "bogus"
    ),
    case(
        "merge-bad-annotation", f"merge -t {{dead}}/acme/app:v1 --annotation novalue {DIGEST}", 2, "novalue"
    ),
    case("prune-bad-duration", "prune {dead}/acme/app --older-than yesterday", 3, "yesterday"),
    case("ls-bad-pattern", "ls {dead}/acme/app --include (", 3, "--include"),
    # -- environment -----------------------------------------------------------------------
    case(
        "retry-attempts-not-a-number",
        "ls {dead}/acme/app",
        3,
        "SPLITBUILD_RETRY_ATTEMPTS",
        SPLITBUILD_RETRY_ATTEMPTS="x",
    ),
    case(
        "password-without-username",
        "ls {srv}/basic",
        3,
        "USERNAME is not",
        **{"SPLITBUILD_AUTH_{SRVENV}_PASSWORD": "pw"},
    ),
    case(
        "registry-auth-not-json",
        "ls {srv}/basic",
        3,
        "SPLITBUILD_REGISTRY_AUTH",
        SPLITBUILD_REGISTRY_AUTH="{nope",
    ),
    case("docker-config-not-json", "ls {srv}/basic", 3, "config.json", DOCKER_CONFIG="{tmp}/bad-docker"),
    # -- misbehaving registries --------------------------------------------------------------
    case("manifest-over-4mib-inspect", "inspect {srv}/big:v1", 3, "exceeds the 4 MiB limit"),
    case("manifest-over-4mib-copy", "copy {srv}/big:v1 {srv}/copy:v1", 3, "exceeds the 4 MiB limit"),
    case("manifest-over-4mib-merge", "merge -t {srv}/out:v1 {srv}/big:v1", 3, "exceeds the 4 MiB limit"),
    case("manifest-html", "inspect {srv}/html:v1", 3, "not valid JSON"),
    case("manifest-html-tag", "tag {srv}/html:v1 v2", 3, "not valid JSON"),
    case("manifest-invalid-json", "inspect {srv}/badjson:v1", 3, "not valid JSON"),
    case("manifest-html-error-page", "inspect {srv}/gateway:v1", 5, "502"),
    case("manifest-digest-header-mismatch", "inspect {srv}/mismatch:v1", 7, "digest mismatch"),
    case("tags-list-html", "ls {srv}/html", 5, "invalid JSON"),
    case("tags-list-invalid-json", "ls {srv}/badjson", 5, "invalid JSON"),
    case("token-html", "ls {srv}/tokenhtml", 5, "token service"),
    case("token-invalid-json", "ls {srv}/tokenbadjson", 5, "token service"),
    case("token-without-token", "inspect {srv}/tokennone:v1", 5, "token service"),
    case("challenge-without-realm", "ls {srv}/norealm", 6, "missing realm"),
    case("unreachable-registry", "ls {dead}/acme/app", 5, "{dead}", SPLITBUILD_RETRY_ATTEMPTS="1"),
]


def registry_routes(server: ScriptedServer) -> None:
    """The scripted registry: one repository per kind of misbehaviour."""
    oci = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": IMAGE.digest}
    server.add(r"^(GET|HEAD) /v2/good/manifests/v1$", Reply(200, IMAGE.manifest.raw, oci))
    for digest, data in IMAGE.blobs.items():
        server.add(rf"/v2/good/blobs/{digest}$", Reply(200, data))
    server.add(r"^GET /v2/good/tags/list", Reply(200, b'{"name":"good","tags":["v1"]}'))
    big = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "x": "a" * (4 << 20)})
    server.add(r"/v2/big/manifests/", Reply(200, big.encode(), {"Content-Type": OCI_INDEX}))
    server.add(r"/v2/html/", Reply(200, HTML, {"Content-Type": "text/html"}))
    server.add(r"/v2/gateway/", Reply(502, HTML, {"Content-Type": "text/html"}))
    server.add(
        r"/v2/badjson/", Reply(200, b'{"schemaVersion": 2, "manifests": [', {"Content-Type": OCI_INDEX})
    )
    wrong = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": DIGEST}
    server.add(r"/v2/mismatch/manifests/", Reply(200, IMAGE.manifest.raw, wrong))
    for repo, body, kind in [
        ("tokenhtml", HTML, "text/html"),
        ("tokenbadjson", b'{"token": ', "application/json"),
        ("tokennone", b'{"expires_in": 60}', "application/json"),
    ]:
        realm = f"http://{server.host}/token-{repo}"
        challenge = f'Bearer realm="{realm}",service="scripted",scope="repository:{repo}:pull"'
        server.add(rf"/v2/{repo}/", Reply(401, b"{}", {"WWW-Authenticate": challenge}))
        server.add(rf"^GET /token-{repo}\?", Reply(200, body, {"Content-Type": kind}))
    server.add(r"/v2/norealm/", Reply(401, b"{}", {"WWW-Authenticate": 'Bearer service="scripted"'}))
    server.add(r"/v2/basic/", Reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="scripted"'}))


def prepare_files(tmp: Path, home: Path) -> None:
    (home / "Dockerfile").write_text("FROM scratch\n")
    (tmp / "valid.toml").write_text('[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n')
    (tmp / "windows.toml").write_text(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["windows/amd64"]\n'
    )
    (tmp / "broken.toml").write_text('[image\nnames = ["ghcr.io/acme/app"]\n')
    (tmp / "unknown-key.toml").write_text(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\ncolour = "blue"\n'
    )
    (tmp / "latin1.toml").write_bytes('[image]\nnames = ["ghcr.io/acme/caf\xe9"]\n'.encode("latin-1"))
    (tmp / "broken.json").write_text('{"eventName": "push", ')
    (tmp / "context.json").write_text(
        json.dumps({"eventName": "push", "ref": "refs/heads/main", "sha": "0" * 40})
    )
    garbage = tmp / "digests-garbage"
    garbage.mkdir()
    (garbage / "garbage").write_text("")
    bad = tmp / "digests-bad"
    bad.mkdir()
    (bad / "amd64").write_text("sha256:not-hex\n")
    (tmp / "digests-empty").mkdir()
    docker = tmp / "bad-docker"
    docker.mkdir()
    (docker / "config.json").write_text("{not json")


def expand(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    tmp = tmp_path_factory.mktemp("bad-input")
    home = tmp_path_factory.mktemp("bad-input-home")
    prepare_files(tmp, home)
    with ScriptedServer() as server:
        registry_routes(server)
        values = {
            "srv": server.host,
            "SRVENV": server.host.replace(".", "_").replace(":", "_"),
            "tmp": str(tmp),
            "dead": f"127.0.0.1:{free_port()}",
        }

        def one(c: Case) -> subprocess.CompletedProcess[str]:
            args = [expand(arg, values) for arg in c.args]
            env = {expand(k, values): expand(v, values) for k, v in c.env.items()}
            return run(args, env, home)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = dict(zip([c.id for c in CASES], pool.map(one, CASES), strict=True))
        yield {
            key: subprocess.CompletedProcess(r.args, r.returncode, r.stdout, expand_back(r.stderr, values))
            for key, r in results.items()
        }


def expand_back(text: str, values: dict[str, str]) -> str:
    """The error with the run's addresses put back as placeholders (the cases name those)."""
    return text.replace(values["dead"], "{dead}")


@pytest.mark.parametrize("bad", CASES, ids=lambda c: c.id)
def test_bad_input_gives_one_line_and_its_exit_code(
    bad: Case, outcomes: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = outcomes[bad.id]
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert lines, f"no error message (exit {result.returncode})"
    assert lines[0].startswith("splitbuild: error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    assert bad.says in lines[0], result.stderr
    assert result.returncode == bad.exit_code, result.stderr


def test_the_corpus_covers_every_command() -> None:
    commands = {c.args[0] for c in CASES}
    assert commands == {
        "inspect", "ls", "copy", "tag", "delete", "prune", "verify", "merge",
        "build", "plan", "generate", "pins", "init", "tags",
    }  # fmt: skip


# -- what nobody expected -----------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import splitbuild.ops

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nand more")

    monkeypatch.setattr(splitbuild.ops, "list_tags", broken)
    result = CliRunner().invoke(make_app(), ["ls", "127.0.0.1:5000/acme/app"], env={"SPLITBUILD_DEBUG": ""})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "splitbuild: error: internal error: RuntimeError: boom",
        "hint: this is a bug in splitbuild: please report it (SPLITBUILD_DEBUG=1 shows the traceback)",
    ]
    debug = CliRunner().invoke(make_app(), ["ls", "127.0.0.1:5000/acme/app"], env={"SPLITBUILD_DEBUG": "1"})
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    assert "RuntimeError: boom" in debug.stderr


def test_the_process_turns_an_exception_outside_a_command_into_one_line(tmp_path: Path) -> None:
    program = (
        "import sys, typer, splitbuild.cli.app as app\n"
        "def make() -> typer.Typer:\n"
        "    cli = typer.Typer()\n"
        "    @cli.command()\n"
        "    def go() -> None:\n"
        "        raise ValueError('outside any handler')\n"
        "    return cli\n"
        "app.make_app = make\n"
        "sys.argv = ['splitbuild']\n"
        "app.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0] == "splitbuild: error: internal error: ValueError: outside any handler"
    )
    assert "Traceback" not in result.stderr
