"""Helpers for the GitLab pipeline tests: evaluate ``rules:`` the way GitLab does for the
expressions splitbuild writes, and run a job's script under ``sh`` with stub ``docker``,
``buildah``, ``splitbuild`` and ``python`` commands that record how they were called."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TERM = re.compile(r'^\$([A-Z_][A-Z0-9_]*) (==|=~) (?:"([^"]*)"|/(.*)/|\$([A-Z_][A-Z0-9_]*))$')


def _term(term: str, env: dict[str, str]) -> bool:
    match = _TERM.match(term)
    assert match, f"unexpected rule term {term!r}"
    name, op, text, regex, other = match.groups()
    value = env.get(name)
    if other is not None:  # $A == $B: equal values (an unset variable equals only an unset one)
        assert op == "=="
        return value == env.get(other)
    if value is None:
        return False
    if op == "==":
        return value == text
    return re.search(regex, value) is not None


def rule_matches(expression: str, env: dict[str, str]) -> bool:
    """GitLab's ``rules:if`` for the forms splitbuild writes: terms ``$VAR == "text"``,
    ``$VAR == $OTHER`` or ``$VAR =~ /regex/`` joined by ``&&`` (a bare ``$VAR`` term is also
    accepted)."""
    result = True
    for term in expression.split(" && "):
        if re.fullmatch(r"\$[A-Z_][A-Z0-9_]*", term):
            result = result and bool(env.get(term[1:]))
        else:
            result = result and _term(term, env)
    return result


@dataclass(frozen=True)
class Decision:
    """Whether a job runs in a pipeline, and what the matching rule sets."""

    runs: bool
    variables: dict[str, str]
    interruptible: bool


def evaluate(job: dict[str, Any], env: dict[str, str]) -> Decision:
    """First matching rule wins; ``when: never`` or no match means the job is not added."""
    for rule in job["rules"]:
        if rule_matches(rule["if"], env):
            if rule.get("when") == "never":
                return Decision(False, {}, False)
            return Decision(
                True, dict(rule.get("variables", {})), rule.get("interruptible", job["interruptible"])
            )
    return Decision(False, {}, False)


def job_variables(job: dict[str, Any]) -> dict[str, str]:
    """The job's variables as the job sees them (``expand: false`` values verbatim)."""
    out: dict[str, str] = {}
    for name, value in job.get("variables", {}).items():
        if isinstance(value, dict):
            assert value["expand"] is False
            out[name] = value["value"]
        else:
            assert "$" not in str(value), f"{name} would be expanded by GitLab"
            out[name] = str(value)
    return out


_DOCKER = """\
import json, os, sys
args = sys.argv[1:]
entry = {"tool": "docker", "args": args, "docker_config": os.environ.get("DOCKER_CONFIG")}
if args[:1] == ["login"]:
    entry["stdin"] = sys.stdin.read()
    # as docker does: the credentials go to $DOCKER_CONFIG/config.json, else ~/.docker/config.json
    config = os.environ.get("DOCKER_CONFIG") or os.path.join(os.environ["HOME"], ".docker")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "config.json"), "a") as handle:
        handle.write(args[-1] + "\\n")
if args[:2] == ["buildx", "build"]:
    entry["env"] = {k: os.environ[k] for k in os.environ.get("STUB_ENV", "").split(",") if k in os.environ}
    path = args[args.index("--metadata-file") + 1]
    data = {"buildx.build.ref": "splitbuild/splitbuild0/abc"}
    if os.environ.get("STUB_DIGEST"):
        data["containerimage.descriptor"] = {"digest": os.environ["STUB_DIGEST"], "size": 1}
        data["containerimage.digest"] = os.environ["STUB_DIGEST"]
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if os.environ.get("STUB_FAIL") == args[0]:
    sys.exit(1)
"""
_BUILDAH = """\
import json, os, sys
args = sys.argv[1:]
entry = {"tool": "buildah", "args": args, "auth_file": os.environ.get("REGISTRY_AUTH_FILE")}
conf = os.environ.get("CONTAINERS_REGISTRIES_CONF")
if conf:
    entry["registries_conf"] = open(conf).read()
if args[:1] == ["login"]:
    entry["stdin"] = sys.stdin.read()
    # as buildah does: $REGISTRY_AUTH_FILE, else ~/.config/containers/auth.json (rootless layout)
    path = os.environ.get("REGISTRY_AUTH_FILE") or os.path.join(
        os.environ["HOME"], ".config", "containers", "auth.json"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as handle:
        handle.write(args[-1] + "\\n")
if args[:1] == ["build"]:
    with open(args[args.index("--iidfile") + 1], "w") as handle:
        handle.write(os.environ.get("STUB_IMAGE_ID", "sha256:" + "e" * 64))
if args[:1] == ["inspect"]:
    print(os.environ.get("STUB_DIGEST", ""))
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if os.environ.get("STUB_FAIL") == args[0]:
    sys.exit(1)
"""
_SPLITBUILD = """\
import json, os, sys
entry = {"tool": "splitbuild", "args": sys.argv[1:],
         "auth": {k: v for k, v in os.environ.items() if k.startswith("SPLITBUILD_AUTH_")}}
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
left_out = json.loads(os.environ.get("STUB_LEFT_OUT", "[]"))
print(json.dumps({"digest": os.environ["STUB_INDEX_DIGEST"], "tags": [], "leftOut": left_out}, indent=2))
"""
_PYTHON = """\
import json, os, sys
if sys.argv[1:3] == ["-m", "pip"]:
    args = sys.argv[3:]
    # the requirements files a call reads (the job removes them when it ends)
    files = [open(args[i + 1]).read() for i, arg in enumerate(args[:-1]) if arg == "-r"]
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps({"tool": "pip", "args": args, "files": files}) + "\\n")
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]
    workdir: Path

    def tool(self, name: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["tool"] == name]


def install_stubs(directory: Path) -> Path:
    """Write the stub commands into ``directory/bin``; returns that directory."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in {
        "docker": _DOCKER,
        "buildah": _BUILDAH,
        "splitbuild": _SPLITBUILD,
        "python": _PYTHON,
    }.items():
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    return bin_dir


def run_job(job: dict[str, Any], workdir: Path, env: dict[str, str]) -> Run:
    """Run the job's script items in one ``sh -e`` (as the GitLab runner does) in ``workdir``
    with the job's variables, ``env`` (CI variables, rule variables, stub settings) and the stubs
    first on ``PATH``."""
    bin_dir = install_stubs(workdir)
    log = workdir / "calls.jsonl"
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(workdir),
        "STUB_LOG": str(log),
        **job_variables(job),
        **env,
    }
    script = "\n".join(job["script"]) + "\n"
    result = subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=workdir,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Run(result.returncode, result.stdout, result.stderr, calls, workdir)
