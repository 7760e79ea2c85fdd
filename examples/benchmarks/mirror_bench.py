#!/usr/bin/env python3
"""Benchmark mirror-scale copies: the same image copied into new repositories of a registry that
already holds its blobs elsewhere (mirror and promotion scripts do this, with base layers shared by
hundreds of images), in one run:

* ``splitbuild copy`` with its blob location cache (the default),
* ``splitbuild copy`` with the cache off (``SPLITBUILD_BLOB_CACHE=0``),
* ``skopeo copy`` (its blob-info cache in a temporary directory of its own),
* ``splitbuild copy`` with nothing to transfer (into the repository it already copied to: the
  source ``GET``, the tag ``HEAD``, the source's tag listing and referrers lookups), the floor a
  mount-only copy is measured against;

and first copies, each into a new registry that holds none of the blobs, with the cache on (and
empty) and off: the cache must not slow down a copy it cannot help.

Two real registries (Debian's docker-registry) on loopback: the source holds one image of
``--layers`` layers of ``--mib`` MiB; each tool first copies it into one repository of the
destination (warm-up: the blobs now live there), then into ``--runs`` new repositories, each timed
(whole process). Prints the median per tool and the ratios the issue set as targets.

Usage: python3 examples/benchmarks/mirror_bench.py [--mib 100] [--layers 3] [--runs 5] [--json]
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
from tests.registry_server import start_registry  # noqa: E402


async def seed(host: str, mib: int, layers: int) -> str:
    image = make_image("linux/amd64", seed="mirror-bench", layers=layers, layer_size=mib * 1024 * 1024)
    async with Client(env={}) as client:
        await push(client.repository(Reference.parse(f"{host}/bench/source")), image, "v1")
    return f"{host}/bench/source:v1"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="size of each layer")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mirror-bench-"))
    source_registry = start_registry(work / "src")
    destination = start_registry(work / "dst")
    try:
        source = anyio.run(seed, source_registry.host, args.mib, args.layers)
        base = {**os.environ, "PYTHONPATH": str(ROOT), "SPLITBUILD_CACHE_DIR": str(work / "cache")}
        splitbuild = [sys.executable, "-m", "splitbuild", "copy", "--no-progress", source]
        # skopeo keeps its blob-info cache where containers/image does (root: /var/lib/containers/cache).
        skopeo = [
            "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{source}",
        ]  # fmt: skip
        tools: dict[str, tuple[list[str], dict[str, str], str]] = {
            "splitbuild (cache)": (splitbuild, {**base, "SPLITBUILD_BLOB_CACHE": "1"}, ""),
            "splitbuild (no cache)": (splitbuild, {**base, "SPLITBUILD_BLOB_CACHE": "0"}, ""),
            "skopeo copy": (skopeo, base, "docker://"),
        }
        times: dict[str, list[float]] = {}
        for n, (name, (argv, env, scheme)) in enumerate(tools.items()):
            warm = f"{scheme}{destination.host}/bench/warm-{n}:v1"
            timed([*argv, warm], env)  # the blobs now live in the destination registry
            times[name] = [
                timed([*argv, f"{scheme}{destination.host}/bench/t{n}-copy-{i}:v1"], env)
                for i in range(args.runs)
            ]
        again = [*splitbuild, f"{destination.host}/bench/warm-0:v1"]
        times["splitbuild (nothing to transfer)"] = [
            timed(again, tools["splitbuild (cache)"][1]) for _ in range(args.runs)
        ]
        first: dict[str, list[float]] = {"first copy, cache on": [], "first copy, cache off": []}
        pair = [("first copy, cache on", "1"), ("first copy, cache off", "0")]
        for i in range(args.runs):
            for name, flag in pair if i % 2 == 0 else pair[::-1]:  # in turn, each going first as often
                fresh = start_registry(work / f"fresh-{flag}-{i}")
                try:
                    cache = {
                        "SPLITBUILD_BLOB_CACHE": flag,
                        "SPLITBUILD_CACHE_DIR": str(work / f"c-{flag}-{i}"),
                    }
                    first[name].append(
                        timed([*splitbuild, f"{fresh.host}/bench/first:v1"], {**base, **cache})
                    )
                finally:
                    fresh.stop()
        times.update(first)
    finally:
        source_registry.stop()
        destination.stop()
        shutil.rmtree(work, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    fastest = medians["splitbuild (cache)"]
    if args.json:
        print(json.dumps({"medians": medians, "runs": times}, indent=2))
        return
    print(f"copy of a {args.layers} x {args.mib} MiB image into a new repository (median of {args.runs}):")
    for name, median in medians.items():
        if not name.startswith("first"):
            print(f"  {name:<34} {median:7.2f} s  ({median / fastest:4.1f}x splitbuild with cache)")
    on, off = medians["first copy, cache on"], medians["first copy, cache off"]
    print(
        f"first copy into a registry without the blobs: cache on {on:.2f} s, off {off:.2f} s "
        f"({on / off:.2f}x)"
    )
    floor = medians["splitbuild (nothing to transfer)"]
    print(
        f"targets: cache within 2x of skopeo: {fastest / medians['skopeo copy']:.1f}x; within 1.5x of "
        f"nothing to transfer: {fastest / floor:.2f}x; first copies no slower: {on / off:.2f}x"
    )


if __name__ == "__main__":
    main()
