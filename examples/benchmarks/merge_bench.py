#!/usr/bin/env python3
"""Benchmark the merge job against its peers, in one run, behind 50 ms of simulated round trip.

Starts a real registry (Debian's docker-registry) and a loopback proxy adding 25 ms each way,
pushes 8 single-platform images by digest, then publishes an index of them under 5 tags with:

* ``splitbuild merge`` (whole process: interpreter start-up and imports included),
* ``buildah manifest`` (create, add x8, push x5),
* ``docker manifest`` (create + push, once per tag).

Prints wall time, HTTP requests and TCP connections through the proxy, and the ratios.
Usage: python3 examples/benchmarks/merge_bench.py [--delay 0.025] [--runs 3] [--venv] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from splitbuild.client import Client  # noqa: E402
from splitbuild.reference import Reference  # noqa: E402
from tests.images import make_image, push  # noqa: E402
from tests.proxy import LatencyProxy  # noqa: E402
from tests.registry_server import start_registry  # noqa: E402

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


async def seed(registry_host: str, repo: str) -> list[str]:
    async with Client(env={}) as client:
        target = client.repository(Reference.parse(f"{registry_host}/{repo}"))
        digests = []
        for platform in PLATFORMS:
            image = make_image(platform, seed=repo, layers=2, layer_size=4096)
            await push(target, image)
            digests.append(image.digest)
        return digests


def timed(commands: list[list[str]], env: dict[str, str]) -> float:
    start = time.perf_counter()
    for cmd in commands:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - start


PYTHON = [sys.executable]


def run_splitbuild(proxy: str, repo: str, digests: list[str], env: dict[str, str]) -> list[list[str]]:
    cmd = [*PYTHON, "-m", "splitbuild", "merge", "--json"]
    for tag in TAGS:
        cmd += ["-t", f"{proxy}/{repo}:{tag}"]
    return [cmd + digests]


def run_buildah(proxy: str, repo: str, digests: list[str], env: dict[str, str]) -> list[list[str]]:
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


def run_docker(proxy: str, repo: str, digests: list[str], env: dict[str, str]) -> list[list[str]]:
    cmds = []
    for tag in TAGS:
        ref = f"{proxy}/{repo}:{tag}"
        cmds.append(
            ["docker", "manifest", "create", "--insecure", ref, *[f"{proxy}/{repo}@{d}" for d in digests]]
        )
        cmds.append(["docker", "manifest", "push", "--insecure", ref])
    return cmds


TOOLS = {"splitbuild": run_splitbuild, "buildah": run_buildah, "docker manifest": run_docker}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay", type=float, default=0.025, help="added latency each way, seconds")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool (median reported)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--venv",
        action="store_true",
        help="install splitbuild into a fresh virtualenv first and time that (what a CI runner has: "
        "no extra site-packages to scan at start-up)",
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
        }
    )
    if not args.venv:  # this checkout's splitbuild, whatever is installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    (work / "home").mkdir()
    (work / "docker").mkdir()
    (work / "docker" / "config.json").write_text("{}")
    (work / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{work}/run"\ngraphroot = "{work}/graph"\n'
    )
    if args.venv:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)
        PYTHON[:] = [str(venv / "bin" / "python")]
    registry = start_registry(work / "registry")
    proxy = LatencyProxy(registry.port, delay=args.delay).start()
    results: dict[str, dict[str, float]] = {}
    try:
        subprocess.run([*PYTHON, "-m", "splitbuild", "--version"], check=True, capture_output=True)
        for tool, build in TOOLS.items():
            binary = {"buildah": "buildah", "docker manifest": "docker"}.get(tool)
            if binary and not shutil.which(binary):
                print(f"skipping {tool}: not installed", file=sys.stderr)
                continue
            walls, reqs, conns = [], [], []
            for run in range(args.runs):
                repo = f"bench/{tool.split()[0]}-{run}"
                digests = anyio.run(seed, registry.host, repo)
                proxy.reset()
                walls.append(timed(build(proxy.host, repo, digests, env), env))
                reqs.append(proxy.requests)
                conns.append(proxy.connections)
            results[tool] = {
                "wall": statistics.median(walls),
                "requests": statistics.median(reqs),
                "connections": statistics.median(conns),
            }
        start = time.perf_counter()
        subprocess.run([*PYTHON, "-m", "splitbuild", "--version"], check=True, capture_output=True)
        startup = time.perf_counter() - start
    finally:
        proxy.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    base = results.get("splitbuild")
    if args.json:
        print(json.dumps({"delay": args.delay, "startup": startup, "results": results}, indent=2))
        return
    print(
        f"merge of {len(PLATFORMS)} platforms under {len(TAGS)} tags, "
        f"{args.delay * 2000:.0f} ms RTT, median of {args.runs}"
    )
    print(f"{'tool':<16}{'wall s':>8}{'requests':>10}{'conns':>7}{'x wall':>8}{'x reqs':>8}")
    for tool, r in results.items():
        ratio_w = r["wall"] / base["wall"] if base else float("nan")
        ratio_r = r["requests"] / base["requests"] if base else float("nan")
        print(
            f"{tool:<16}{r['wall']:>8.2f}{r['requests']:>10.0f}{r['connections']:>7.0f}{ratio_w:>8.1f}{ratio_r:>8.1f}"
        )
    print(f"splitbuild start-up (--version): {startup:.2f} s")


if __name__ == "__main__":
    main()
