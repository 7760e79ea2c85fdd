#!/usr/bin/env python3
"""Benchmark the merge job against its peers, in one run, behind 50 ms of simulated round trip.

Starts a real registry (Debian's docker-registry) and a loopback proxy adding 25 ms each way,
pushes 8 single-platform images by digest, then publishes an index of them under 5 tags with:

* ``splitbuild merge`` of this checkout (whole process: interpreter start-up and imports included),
* ``splitbuild merge`` of another checkout, with ``--baseline PATH`` (before/after side by side),
* ``buildah manifest`` (create, add x8, push x5),
* ``docker manifest`` (create + push, once per tag).

``--auth token`` puts the registry behind a token service (distribution's token auth, the scheme of
GHCR, Docker Hub and GitLab's registry; tests/token_server.py) with its own 50 ms, and every tool
logs in from the same docker config: what a CI merge job talks to. The default is an open registry.
``--sources buildx`` pushes each platform as buildx does with provenance on (an index of the image
and its attestation, the platform in the index), as the generated GitHub and Forgejo legs push;
only splitbuild runs then (``buildah manifest add`` and ``docker manifest create`` take single
images). The default is plain single-platform images, as buildah and the GitLab legs push.

The tools take turns within each run (so a busy machine slows them alike). Prints the medians of
wall time, CPU time (user + system of the processes), HTTP requests and TCP connections through
the proxy (the token service's included), the round trips (waves of requests, each waiting for an
answer of the one before), the ratios, and the ``-X importtime`` figures of one merge (the
top-level imports). Then the floor: the interpreter importing the mandated stack (httpx, anyio,
pydantic, typer) as a merge uses it, started as splitbuild's command line starts, and doing nothing
else, plus splitbuild's round trips at the set latency: what a merge with that stack and that
protocol would take if its own work (parsing the command line, building and checking the index)
took no time at all.

Usage: python3 examples/benchmarks/merge_bench.py [--delay 0.025] [--runs 5] [--baseline PATH]
       [--venv] [--auth none|token] [--sources plain|buildx] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio  # noqa: E402
from _bench import (  # noqa: E402
    ImportTimes,
    Timing,
    import_times,
    median,
    round_trips,
    run_timed,
    with_pythonpath,
)

from splitbuild.client import Client  # noqa: E402
from splitbuild.reference import Reference  # noqa: E402
from tests.images import make_buildx_index, make_image, push  # noqa: E402
from tests.proxy import LatencyProxy  # noqa: E402
from tests.registry_server import start_registry  # noqa: E402
from tests.token_server import start_token_server  # noqa: E402

PLATFORMS = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
]
TAGS = ["v1", "v1.2", "v1.2.3", "latest", "sha-abc"]

Commands = Callable[[str, str, list[str]], list[list[str]]]


# The floor's process: the mandated stack as any merge uses it (httpx; anyio and its asyncio
# backend; pydantic's BaseModel, which a bare ``import pydantic`` defers; typer and the parameter
# conversion it runs for every option), started as splitbuild's command line starts (the same
# optional imports kept out, pydantic's plugin scan off, no collection at exit), nothing else.
STACK = (
    "import splitbuild.cli.app as cli; cli._skip_unused_imports(); "
    "import httpx, anyio, anyio._backends._asyncio, typer, typer._adapters, gc; "
    "from pydantic import BaseModel; gc.freeze()"
)


async def seed(registry_host: str, repo: str, docker_config: str, buildx: bool = False) -> list[str]:
    async with Client(env={"DOCKER_CONFIG": docker_config}) as client:
        target = client.repository(Reference.parse(f"{registry_host}/{repo}"))
        digests = []
        for platform in PLATFORMS:
            image = make_image(platform, seed=repo, layers=2, layer_size=4096)
            if buildx:
                image = make_buildx_index(image, platform, seed=repo)
            await push(target, image)
            digests.append(image.digest)
        return digests


def splitbuild_merge(python: list[str], flags: list[str] | None = None) -> Commands:
    def commands(proxy: str, repo: str, digests: list[str]) -> list[list[str]]:
        cmd = [*python, *(flags or []), "-m", "splitbuild", "merge", "--json"]
        for tag in TAGS:
            cmd += ["-t", f"{proxy}/{repo}:{tag}"]
        return [cmd + digests]

    return commands


def run_buildah(proxy: str, repo: str, digests: list[str]) -> list[list[str]]:
    name = f"bench-{os.getpid()}-{repo.replace('/', '-')}"
    cmds = [["buildah", "manifest", "create", name]]
    cmds += [
        ["buildah", "manifest", "add", "--tls-verify=false", name, f"docker://{proxy}/{repo}@{d}"]
        for d in digests
    ]
    cmds += [
        ["buildah", "manifest", "push", "--tls-verify=false", name, f"docker://{proxy}/{repo}:{t}"]
        for t in TAGS
    ]
    return cmds


def run_docker(proxy: str, repo: str, digests: list[str]) -> list[list[str]]:
    cmds = []
    for tag in TAGS:
        ref = f"{proxy}/{repo}:{tag}"
        cmds.append(
            ["docker", "manifest", "create", "--insecure", ref, *[f"{proxy}/{repo}@{d}" for d in digests]]
        )
        cmds.append(["docker", "manifest", "push", "--insecure", ref])
    return cmds


def venv_python(work: Path, name: str, checkout: Path) -> list[str]:
    """A fresh virtualenv with ``checkout`` installed (what a CI runner has)."""
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(checkout)], check=True)
    return [str(venv / "bin" / "python")]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--delay", type=float, default=0.025, help="added latency each way, seconds")
    ap.add_argument("--runs", type=int, default=5, help="runs per tool (median reported)")
    ap.add_argument("--baseline", type=Path, help="another splitbuild checkout to run beside this one")
    ap.add_argument("--auth", choices=["none", "token"], default="none", help="open registry or token auth")
    ap.add_argument("--sources", choices=["plain", "buildx"], default="plain", help="what the legs pushed")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--venv",
        action="store_true",
        help="install each splitbuild into a fresh virtualenv first (what a CI runner has: "
        "no extra site-packages to scan at start-up); default: this interpreter, checkout on PYTHONPATH",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="splitbuild-bench-"))
    env = dict(os.environ)
    env.update(
        {
            "DOCKER_CONFIG": str(work / "docker"),
            "HOME": str(work / "home"),
            "STORAGE_DRIVER": "vfs",
            "BUILDAH_ISOLATION": "chroot",
            "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"),
            "REGISTRY_AUTH_FILE": str(work / "docker" / "config.json"),  # buildah reads docker's file
        }
    )
    (work / "home").mkdir()
    (work / "docker").mkdir()
    (work / "docker" / "config.json").write_text("{}")
    (work / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{work}/run"\ngraphroot = "{work}/graph"\n'
    )
    checkouts = {"splitbuild": ROOT}
    if args.baseline is not None:
        checkouts["splitbuild baseline"] = args.baseline.resolve()
    tools: dict[str, tuple[Commands, dict[str, str]]] = {}
    pythons: dict[str, list[str]] = {}
    for index, (tool, checkout) in enumerate(checkouts.items()):
        if args.venv:
            pythons[tool] = venv_python(work, f"venv{index}", checkout)
            tool_env = env
        else:
            pythons[tool] = [sys.executable]
            tool_env = with_pythonpath(env, str(checkout))
        tools[tool] = (splitbuild_merge(pythons[tool]), tool_env)
    for tool, build in {"buildah": run_buildah, "docker manifest": run_docker}.items():
        if args.sources == "buildx":
            print(f"skipping {tool}: it takes single images, not buildx's indexes", file=sys.stderr)
        elif shutil.which(tool.split()[0]):
            tools[tool] = (build, env)
        else:
            print(f"skipping {tool}: not installed", file=sys.stderr)

    tokens = token_proxy = None
    extra_config = None
    if args.auth == "token":
        password = secrets.token_hex(16)  # a throwaway account of this run's token service
        tokens = start_token_server(
            work / "tokens", users={"bench": password}, grants={"bench": {"bench/*": ("pull", "push")}}
        )
        token_proxy = LatencyProxy(tokens.port, delay=args.delay).start()
        extra_config = tokens.registry_config()
        extra_config["auth"]["token"]["realm"] = f"http://{token_proxy.host}/token"
    registry = start_registry(work / "registry", extra_config=extra_config)
    proxy = LatencyProxy(registry.port, delay=args.delay).start()
    if tokens is not None:
        login = {"auth": base64.b64encode(f"bench:{password}".encode()).decode()}
        auths = {registry.host: login, proxy.host: login}
        (work / "docker" / "config.json").write_text(json.dumps({"auths": auths}))
    docker_config = str(work / "docker")
    proxies = [p for p in (proxy, token_proxy) if p is not None]
    timings: dict[str, list[Timing]] = {t: [] for t in tools}
    counts: dict[str, list[tuple[int, int, int]]] = {t: [] for t in tools}
    floor: list[float] = []
    imports: dict[str, ImportTimes] = {}
    try:
        for tool in checkouts:  # warm up: byte-compile, fill the page cache
            subprocess.run(
                [*pythons[tool], "-m", "splitbuild", "--version"], env=tools[tool][1], cwd=work, check=True
            )
        for run in range(args.runs):
            for tool, (commands, tool_env) in tools.items():
                repo = f"bench/{tool.replace(' ', '-')}-{run}"
                digests = anyio.run(seed, registry.host, repo, docker_config, args.sources == "buildx")
                for p in proxies:
                    p.reset()
                timings[tool].append(run_timed(commands(proxy.host, repo, digests), tool_env, cwd=str(work)))
                counts[tool].append(
                    (
                        sum(p.requests for p in proxies),
                        sum(p.connections for p in proxies),
                        round_trips([t for p in proxies for t in p.request_times], 2 * args.delay),
                    )
                )
            stack = [*pythons["splitbuild"], "-c", STACK]
            floor.append(run_timed([stack], tools["splitbuild"][1], cwd=str(work)).wall)
        for tool in checkouts:
            repo = f"bench/{tool.replace(' ', '-')}-importtime"
            digests = anyio.run(seed, registry.host, repo, docker_config, args.sources == "buildx")
            cmd = splitbuild_merge(pythons[tool], ["-X", "importtime"])(proxy.host, repo, digests)[0]
            proc = subprocess.run(
                cmd, env=tools[tool][1], cwd=work, capture_output=True, text=True, check=True
            )
            imports[tool] = import_times(proc.stderr)
    finally:
        for p in proxies:
            p.stop()
        registry.stop()
        if tokens is not None:
            tokens.stop()
        shutil.rmtree(work, ignore_errors=True)

    results = {
        tool: {
            "wall": median([t.wall for t in timings[tool]]),
            "cpu": median([t.cpu for t in timings[tool]]),
            "requests": median([c[0] for c in counts[tool]]),
            "connections": median([c[1] for c in counts[tool]]),
            "round_trips": median([c[2] for c in counts[tool]]),
        }
        for tool in tools
    }
    base = results["splitbuild"]
    stack_floor = median(floor)
    network_floor = base["round_trips"] * 2 * args.delay
    floors = {"stack": stack_floor, "network": network_floor, "total": stack_floor + network_floor}
    if args.json:
        found = {tool: vars(i) for tool, i in imports.items()}
        print(
            json.dumps(
                {
                    "delay": args.delay,
                    "runs": args.runs,
                    "auth": args.auth,
                    "sources": args.sources,
                    "results": results,
                    "floor": floors,
                    "imports": found,
                }
            )
        )
        return
    print(
        f"merge of {len(PLATFORMS)} platforms under {len(TAGS)} tags, {args.delay * 2000:.0f} ms RTT, "
        f"{'token auth' if args.auth == 'token' else 'open registry'}, {args.sources} sources, "
        f"median of {args.runs} (tools in turn)"
    )
    print(
        f"{'tool':<21}{'wall s':>8}{'cpu s':>8}{'requests':>10}{'conns':>7}{'trips':>7}"
        f"{'x wall':>8}{'x reqs':>8}"
    )
    for tool, r in results.items():
        print(
            f"{tool:<21}{r['wall']:>8.2f}{r['cpu']:>8.2f}{r['requests']:>10.0f}{r['connections']:>7.0f}"
            f"{r['round_trips']:>7.0f}{r['wall'] / base['wall']:>8.1f}"
            f"{r['requests'] / base['requests']:>8.1f}"
        )
    line = (
        f"floor: interpreter + httpx, anyio, pydantic, typer as a merge uses them "
        f"{stack_floor:.2f} s + {base['round_trips']:.0f} round trips "
        f"{network_floor:.2f} s = {floors['total']:.2f} s"
    )
    if "buildah" in results:
        line += f" ({results['buildah']['wall'] / floors['total']:.1f}x faster than buildah at best)"
    print(line)
    for tool, i in imports.items():
        top = ", ".join(f"{name} {ms:.0f}" for name, ms in i.top)
        print(f"{tool} -X importtime: {i.total_ms:.0f} ms, {i.modules} modules; top (ms): {top}")


if __name__ == "__main__":
    main()
