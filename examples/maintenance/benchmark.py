#!/usr/bin/env python3
"""Benchmark ``splitbuild copy`` and ``splitbuild prune`` against skopeo on two local registries.

* copy: a multi-arch index (4 platforms, 2 layers of 25 MiB each, attestations: about 200 MiB of
  incompressible blobs) from one registry to another, with ``splitbuild copy`` and with
  ``skopeo copy --all --preserve-digests``; wall time and peak RSS of each process. Both must
  produce the same digest at the destination.
* prune: a repository with ``--tags`` tags (2,000 by default, each on its own manifest), all
  deleted with ``splitbuild prune --keep-last 0 --yes`` and with a loop of ``skopeo delete``;
  wall time, and the HTTP requests each made (counted by a loopback proxy, which can add latency:
  ``--delay 0.01`` is a 20 ms round trip).

Usage: python3 examples/maintenance/benchmark.py [--runs 3] [--tags 2000] [--layer-mib 25] [--delay 0]
       [--json]
Starts its own registries (Debian's docker-registry); needs skopeo.
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
from splitbuild.models import Descriptor  # noqa: E402
from splitbuild.reference import parse_reference  # noqa: E402
from tests.images import make_image, push  # noqa: E402
from tests.ops_support import multiarch  # noqa: E402
from tests.proxy import LatencyProxy  # noqa: E402
from tests.registry_server import start_registry  # noqa: E402

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le"]
SKOPEO_TLS = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def measure(cmd: list[str], env: dict[str, str], work: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process.

    The RSS comes from GNU time: a process forked straight from this (large) benchmark process
    would report this process's high-water mark as its own (Linux keeps it across exec).
    """
    report = work / "rss"
    timed = ["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd]
    start = time.perf_counter()
    proc = subprocess.run(timed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}"
        )
    return wall, int(report.read_text().split()[-1]) / 1024


async def seed_copy_source(host: str, layer_mib: int) -> str:
    images = [make_image(p, layers=2, layer_size=layer_mib * 1024 * 1024, seed="bench") for p in PLATFORMS]
    index = multiarch(PLATFORMS, images=images, seed="bench")
    async with Client(env={}) as client:
        await push(client.repository(parse_reference(f"{host}/bench/source")), index, "v1")
    return index.digest


async def seed_prune_repo(host: str, repo: str, count: int) -> None:
    """``count`` tags, each on its own manifest (the manifests differ by an annotation only)."""
    async with Client(env={}) as client:
        target = client.repository(parse_reference(f"{host}/{repo}"))
        base = make_image(seed="prune")
        for digest, data in base.blobs.items():
            desc = Descriptor.model_validate(
                {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
            )
            await target.put_blob(desc, data)
        limiter = anyio.CapacityLimiter(16)

        async def one(i: int) -> None:
            image = make_image(seed="prune", annotations={"bench.n": str(i)})
            async with limiter:
                await target.put_manifest(image.manifest, f"sha-{i:07x}")

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)


async def tags_of(host: str, repo: str) -> list[str]:
    async with Client(env={}) as client:
        return await client.repository(parse_reference(f"{host}/{repo}")).list_tags()


async def digest_of(ref: str) -> str:
    async with Client(env={}) as client:
        reference = parse_reference(ref)
        desc = await client.repository(reference).head_manifest(reference.tag or "latest")
        assert desc is not None, ref
        return desc.digest


def bench_copy(src_host: str, runs: int, env: dict[str, str], digest: str, work: Path) -> dict[str, object]:
    """Each copy goes to a registry of its own, so that no tool can mount blobs an earlier run
    left behind (skopeo remembers blob locations in its blob-info cache)."""
    results: dict[str, dict[str, list[float]]] = {
        "splitbuild": {"wall": [], "rss": []},
        "skopeo": {"wall": [], "rss": []},
    }
    for run in range(runs):
        for tool in results:
            target = start_registry(work / f"dst-{tool}-{run}")
            try:
                dst = f"{target.host}/bench/copy:v1"
                if tool == "splitbuild":
                    cmd = [sys.executable, "-m", "splitbuild", "copy", "--no-progress"]
                    cmd += [f"{src_host}/bench/source:v1", dst]
                else:
                    cmd = ["skopeo", "copy", "--all", "--preserve-digests", *SKOPEO_TLS]
                    cmd += [f"docker://{src_host}/bench/source:v1", f"docker://{dst}"]
                wall, rss = measure(cmd, env, work)
                if anyio.run(digest_of, dst) != digest:
                    raise SystemExit(f"{tool}: the copy at {dst} has another digest")
            finally:
                target.stop()
                shutil.rmtree(work / f"dst-{tool}-{run}", ignore_errors=True)
            results[tool]["wall"].append(wall)
            results[tool]["rss"].append(rss)
    return {
        tool: {"wall": statistics.median(r["wall"]), "peak_rss_mib": max(r["rss"])}
        for tool, r in results.items()
    }


def bench_prune(
    registry_host: str, proxy: LatencyProxy, count: int, env: dict[str, str], work: Path
) -> dict[str, object]:
    results: dict[str, object] = {}
    for tool in ("splitbuild", "skopeo"):
        repo = f"bench/prune-{tool}"
        anyio.run(seed_prune_repo, registry_host, repo, count)
        tags = anyio.run(tags_of, registry_host, repo)
        proxy.reset()
        start = time.perf_counter()
        if tool == "splitbuild":
            cmd = [
                sys.executable,
                "-m",
                "splitbuild",
                "prune",
                f"{proxy.host}/{repo}",
                "--keep-last",
                "0",
                "--yes",
            ]
            measure(cmd, env, work)
        else:
            for tag in tags:
                measure(
                    ["skopeo", "delete", "--tls-verify=false", f"docker://{proxy.host}/{repo}:{tag}"],
                    env,
                    work,
                )
        wall = time.perf_counter() - start
        left = anyio.run(tags_of, registry_host, repo)
        if left:
            raise SystemExit(f"{tool}: {len(left)} tags left after pruning")
        results[tool] = {"wall": wall, "requests": proxy.requests}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="copy runs per tool (median wall, max RSS)")
    ap.add_argument("--tags", type=int, default=2000, help="tags to prune")
    ap.add_argument("--layer-mib", type=int, default=25, help="size of each of the 8 layers")
    ap.add_argument("--delay", type=float, default=0.0, help="latency added each way to prune requests")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("skopeo", "/usr/bin/time"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="splitbuild-bench-"))
    env = dict(os.environ, HOME=str(work), REGISTRY_AUTH_FILE=str(work / "auth.json"))
    (work / "auth.json").write_text("{}")
    src, dst = start_registry(work / "src"), start_registry(work / "dst")
    proxy = LatencyProxy(dst.port, delay=args.delay).start()
    try:
        digest = anyio.run(seed_copy_source, src.host, args.layer_mib)
        copy = bench_copy(src.host, args.runs, env, digest, work)
        prune = bench_prune(dst.host, proxy, args.tags, env, work)
    finally:
        proxy.stop()
        src.stop()
        dst.stop()
        shutil.rmtree(work, ignore_errors=True)
    size = len(PLATFORMS) * 2 * args.layer_mib
    if args.json:
        data = {"copy_mib": size, "copy": copy, "prune_tags": args.tags, "delay": args.delay, "prune": prune}
        print(json.dumps(data, indent=2))
        return
    print(f"copy of a {len(PLATFORMS)}-platform index ({size} MiB of layers) between two local registries")
    print(f"{'tool':<12}{'wall s':>9}{'peak RSS MiB':>14}")
    for tool, r in copy.items():
        assert isinstance(r, dict)
        print(f"{tool:<12}{r['wall']:>9.2f}{r['peak_rss_mib']:>14.0f}")
    print(f"prune of {args.tags} tags ({args.delay * 2000:.0f} ms round trip added)")
    print(f"{'tool':<12}{'wall s':>9}{'requests':>10}")
    for tool, r in prune.items():
        assert isinstance(r, dict)
        print(f"{tool:<12}{r['wall']:>9.2f}{r['requests']:>10}")
    ratio = prune["skopeo"]["wall"] / prune["splitbuild"]["wall"]  # type: ignore[index]
    print(f"prune speed-up: {ratio:.1f}x")


if __name__ == "__main__":
    main()
