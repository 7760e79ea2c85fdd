#!/usr/bin/env python3
"""Scale benchmarks: the ``splitbuild`` process against real local registries, at sizes CI meets.

* merge: an index of 64 platforms (64 images pushed by digest, merged under 3 tags);
* ls: a repository with 5,000 tags (listed in one page by distribution 2.8, and in pages of 100
  through a proxy that paginates like distribution 3 and hosted registries do);
* copy: a 1 GiB single-layer image from one registry to another (streamed: the peak RSS of the
  process must stay under 150 MB, ``--max-rss-mb``).

Each is one whole process (interpreter start-up included), timed, its peak RSS taken with GNU
time (a child forked straight from this large process would report this process's high-water
mark as its own), and its HTTP requests counted by a loopback proxy. Results are checked: the
index holds the 64 platforms, the listing has every tag, the copy has the source's digest.

Usage: python3 examples/benchmarks/scale_bench.py [--platforms 64] [--tags 5000] [--copy-mib 1024]
       [--max-rss-mb 150] [--json]
Needs Debian's docker-registry and /usr/bin/time; about 3x ``--copy-mib`` of free disk space.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from splitbuild.client import Client  # noqa: E402
from splitbuild.models import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Manifest  # noqa: E402
from splitbuild.reference import parse_reference  # noqa: E402
from tests.images import make_image, push  # noqa: E402
from tests.ops_support import Paginating  # noqa: E402
from tests.proxy import LatencyProxy  # noqa: E402
from tests.registry_server import RegistryServer, start_registry  # noqa: E402

OSES = ["linux", "freebsd", "netbsd", "openbsd", "windows", "darwin", "illumos", "plan9"]
ARCHES = ["amd64", "arm64", "386", "riscv64", "ppc64le", "s390x", "mips64le", "loong64"]
CHUNK = 4 * 1024 * 1024


def platforms(count: int) -> list[str]:
    every = [f"{os_}/{arch}" for os_ in OSES for arch in ARCHES]
    if count > len(every):
        raise SystemExit(f"at most {len(every)} platforms")
    return every[:count]


# -- measuring ----------------------------------------------------------------------------------


def measure(cmd: list[str], env: dict[str, str], work: Path) -> tuple[dict[str, Any], str]:
    """Wall seconds and peak RSS (MiB) of one process, and its stdout."""
    report = work / "time.txt"
    timed = ["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd]
    start = time.perf_counter()
    # this checkout's splitbuild, from a neutral directory (``python -m`` puts the working directory first)
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    proc = subprocess.run(timed, env=env, cwd=work, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    rss = int(report.read_text().split()[-1]) / 1024
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1)}, proc.stdout


def splitbuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "splitbuild", *args]


# -- merge: 64 platforms ------------------------------------------------------------------------


async def seed_platforms(host: str, repo: str, wanted: list[str]) -> list[str]:
    async with Client(env={}) as client:
        target = client.repository(parse_reference(f"{host}/{repo}"))
        limiter = anyio.CapacityLimiter(16)
        digests: dict[str, str] = {}

        async def one(platform: str) -> None:
            image = make_image(platform, seed="scale", layers=1, layer_size=1024)
            async with limiter:
                await push(target, image)
            digests[platform] = image.digest

        async with anyio.create_task_group() as tg:
            for platform in wanted:
                tg.start_soon(one, platform)
        return [digests[p] for p in wanted]


def bench_merge(
    registry: RegistryServer, proxy: LatencyProxy, count: int, env: dict[str, str], work: Path
) -> dict[str, Any]:
    wanted = platforms(count)
    repo = "scale/merge"
    digests = anyio.run(seed_platforms, registry.host, repo, wanted)
    (work / "digests").mkdir()
    for digest in digests:
        (work / "digests" / digest.removeprefix("sha256:")).write_text("")
    proxy.reset()
    tags = [arg for tag in ("v1", "v1.0", "latest") for arg in ("-t", f"{proxy.host}/{repo}:{tag}")]
    result, stdout = measure(
        splitbuild("merge", "--json", *tags, "--digests-dir", str(work / "digests")), env, work
    )
    data = json.loads(stdout)
    held = anyio.run(index_platforms, registry.host, repo, "v1")
    if sorted(held) != sorted(wanted):
        raise SystemExit(f"merge: the index holds {len(held)} platforms, not the {count} pushed")
    return result | {"platforms": len(held), "requests": proxy.requests, "index_bytes": data.get("size")}


async def index_platforms(host: str, repo: str, tag: str) -> list[str]:
    async with Client(env={}) as client:
        index = await client.repository(parse_reference(f"{host}/{repo}")).get_manifest(tag)
        return [str(child.platform) for child in index.children() if child.platform is not None]


# -- ls: 5,000 tags -----------------------------------------------------------------------------


async def seed_tags(host: str, repo: str, count: int) -> None:
    async with Client(env={}) as client:
        target = client.repository(parse_reference(f"{host}/{repo}"))
        image = make_image(seed="tags")
        await push(target, image)
        limiter = anyio.CapacityLimiter(32)

        async def one(i: int) -> None:
            async with limiter:
                await target.put_manifest(image.manifest, f"build-{i:05d}")

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)


def bench_ls(
    registry: RegistryServer, proxy: LatencyProxy, count: int, env: dict[str, str], work: Path
) -> dict[str, Any]:
    """The process against distribution 2.8 (one page whatever ``n`` asks), then the library
    through a transport that pages like distribution 3 and hosted registries (1,000 a page)."""
    repo = "scale/tags"
    anyio.run(seed_tags, registry.host, repo, count)
    proxy.reset()
    result, stdout = measure(splitbuild("ls", f"{proxy.host}/{repo}"), env, work)
    listed = stdout.split()
    if len(listed) != count or len(set(listed)) != count:
        raise SystemExit(f"ls: listed {len(listed)} tags ({len(set(listed))} distinct), not {count}")
    paged, pages, seconds = anyio.run(list_paged, registry.host, repo)
    if sorted(paged) != sorted(listed):
        raise SystemExit("ls: the paged listing differs")
    return result | {
        "tags": len(listed),
        "requests": proxy.requests,
        "paged_s": round(seconds, 2),
        "pages": pages,
    }


async def list_paged(host: str, repo: str) -> tuple[list[str], int, float]:
    transport = Paginating()
    async with Client(env={}, transport=transport) as client:
        start = time.perf_counter()
        tags = await client.repository(parse_reference(f"{host}/{repo}")).list_tags()
        return tags, transport.pages, time.perf_counter() - start


# -- copy: 1 GiB --------------------------------------------------------------------------------


def write_layer(path: Path, mib: int) -> Descriptor:
    """``mib`` MiB of incompressible bytes, written as they are hashed (never all in memory)."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(mib // 4):
            chunk = os.urandom(CHUNK)
            digest.update(chunk)
            out.write(chunk)
    return Descriptor.model_validate(
        {"mediaType": OCI_LAYER, "digest": f"sha256:{digest.hexdigest()}", "size": path.stat().st_size}
    )


def file_source(path: Path) -> Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[AsyncIterator[bytes]]:
        async with await anyio.open_file(path, "rb") as handle:

            async def chunks() -> AsyncIterator[bytes]:
                while chunk := await handle.read(CHUNK):
                    yield chunk

            yield chunks()

    return opened


async def seed_big_image(host: str, repo: str, layer_path: Path, layer: Descriptor) -> str:
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}
    ).encode()
    config_desc = Descriptor.model_validate(
        {
            "mediaType": OCI_CONFIG,
            "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
            "size": len(config),
        }
    )
    manifest = Manifest.from_bytes(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_desc.to_dict(),
                "layers": [layer.to_dict()],
            }
        ).encode()
    )
    async with Client(env={}) as client:
        target = client.repository(parse_reference(f"{host}/{repo}"))
        await target.put_blob(config_desc, config)
        await target.put_blob(layer, file_source(layer_path))
        await target.put_manifest(manifest, "v1")
    return manifest.digest


async def tag_digest(ref: str) -> str | None:
    async with Client(env={}) as client:
        reference = parse_reference(ref)
        desc = await client.repository(reference).head_manifest(reference.tag or "latest")
        return desc.digest if desc else None


def bench_copy(mib: int, max_rss: float, env: dict[str, str], work: Path) -> dict[str, Any]:
    layer_path = work / "layer.bin"
    started = time.perf_counter()
    layer = write_layer(layer_path, mib)
    src, dst = start_registry(work / "copy-src"), start_registry(work / "copy-dst")
    proxy = LatencyProxy(dst.port, delay=0.0).start()
    try:
        digest = anyio.run(seed_big_image, src.host, "scale/big", layer_path, layer)
        layer_path.unlink()
        seeded = time.perf_counter() - started
        result, stdout = measure(
            splitbuild(
                "copy", "--no-progress", "--json", f"{src.host}/scale/big:v1", f"{proxy.host}/scale/big"
            ),
            env,
            work,
        )
        data = json.loads(stdout)
        if anyio.run(tag_digest, f"{dst.host}/scale/big:v1") != digest:
            raise SystemExit("copy: the destination has another digest")
    finally:
        proxy.stop()
        src.stop()
        dst.stop()
    if result["peak_rss_mib"] * 1.048576 > max_rss:
        raise SystemExit(f"copy: peak RSS {result['peak_rss_mib']} MiB is over {max_rss} MB")
    return result | {
        "layer_mib": mib,
        "throughput_mib_s": round(mib / result["wall_s"], 1),
        "bytes_copied": data.get("bytesCopied"),
        "requests": proxy.requests,
        "seed_s": round(seeded, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--platforms", type=int, default=64, help="platforms in the merged index")
    ap.add_argument("--tags", type=int, default=5000, help="tags to list")
    ap.add_argument("--copy-mib", type=int, default=1024, help="size of the copied layer (MiB)")
    ap.add_argument("--max-rss-mb", type=float, default=150.0, help="fail when copy's peak RSS is above")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not shutil.which("/usr/bin/time"):
        raise SystemExit("/usr/bin/time (GNU time) is not installed")
    work = Path(tempfile.mkdtemp(prefix="splitbuild-scale-"))
    env = dict(os.environ, HOME=str(work), DOCKER_CONFIG=str(work))
    results: dict[str, Any] = {}
    registry = start_registry(work / "registry")
    proxy = LatencyProxy(registry.port, delay=0.0).start()
    try:
        results["merge"] = bench_merge(registry, proxy, args.platforms, env, work)
        results["ls"] = bench_ls(registry, proxy, args.tags, env, work)
    finally:
        proxy.stop()
        registry.stop()
    results["copy"] = bench_copy(args.copy_mib, args.max_rss_mb, env, work)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    m, t, c = results["merge"], results["ls"], results["copy"]
    print(
        f"merge  {m['platforms']} platforms, 3 tags: {m['wall_s']} s, {m['requests']} requests, "
        f"peak RSS {m['peak_rss_mib']} MiB (index {m['index_bytes']} bytes)"
    )
    print(
        f"ls     {t['tags']} tags: {t['wall_s']} s, {t['requests']} requests, "
        f"peak RSS {t['peak_rss_mib']} MiB; paged by 1,000: {t['pages']} pages in {t['paged_s']} s"
    )
    print(
        f"copy   {c['layer_mib']} MiB layer: {c['wall_s']} s ({c['throughput_mib_s']} MiB/s), "
        f"{c['requests']} requests, peak RSS {c['peak_rss_mib']} MiB"
    )


if __name__ == "__main__":
    main()
