#!/usr/bin/env python3
"""Prepare the root file systems of examples/hello: a static busybox per target architecture.

The image builds FROM scratch, so no base image is pulled. Its only file from outside is
``rootfs/<arch><variant>/bin/busybox``, taken from Debian's ``busybox-static`` package for each
architecture. The packages are fetched with apt (signature-checked against the machine's apt
sources) into a cache, with a private package index, so the machine's dpkg configuration is not
touched (no ``dpkg --add-architecture``). Once the cache holds them, no network is needed.

    python3 examples/hello/prepare.py                       # every platform of splitbuild.toml
    python3 examples/hello/prepare.py --platform linux/amd64,linux/arm64 --dest /tmp/rootfs

Needs apt-get and dpkg-deb (Debian and derivatives). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "busybox-static"
# platform -> (Debian architecture, directory named like TARGETARCH + TARGETVARIANT)
ARCHES = {
    "linux/amd64": ("amd64", "amd64"),
    "linux/386": ("i386", "386"),
    "linux/arm64": ("arm64", "arm64"),
    "linux/arm/v7": ("armhf", "armv7"),
    "linux/arm/v6": ("armel", "armv6"),
    "linux/ppc64le": ("ppc64el", "ppc64le"),
    "linux/s390x": ("s390x", "s390x"),
    "linux/mips64le": ("mips64el", "mips64le"),
}


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "splitbuild" / "debs"


def config_platforms() -> list[str]:
    with open(HERE / "splitbuild.toml", "rb") as handle:
        return list(tomllib.load(handle)["image"]["platforms"])


def _cached(cache: Path, debian_arch: str) -> Path | None:
    found = sorted(cache.glob(f"{PACKAGE}_*_{debian_arch}.deb"))
    return found[-1] if found else None


def _apt_options(cache: Path, debian_arches: list[str]) -> list[str]:
    state = cache / "apt"
    for sub in ("lists/partial", "archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    options = ["-q", "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state}"]
    if os.geteuid() == 0:  # the cache may be private to root, where apt's _apt user cannot write
        options += ["-o", "APT::Sandbox::User=root"]
    for arch in debian_arches:
        options += ["-o", f"APT::Architectures::={arch}"]
    return options


def fetch(cache: Path, debian_arches: list[str]) -> None:
    """Download the packages of ``debian_arches`` into ``cache`` with apt."""
    if shutil.which("apt-get") is None:
        sys.exit("prepare.py: apt-get is not available; copy busybox-static .deb files into " + str(cache))
    cache.mkdir(parents=True, exist_ok=True)
    options = _apt_options(cache, debian_arches)
    print(f"prepare.py: fetching {PACKAGE} for {', '.join(debian_arches)} with apt", file=sys.stderr)
    # A source without these architectures (or a mirror mid-sync) only makes `update` warn; the
    # download below says whether what is needed was found.
    update = subprocess.run(["apt-get", *options, "update"], check=False, capture_output=True, text=True)
    wanted = [f"{PACKAGE}:{arch}" for arch in debian_arches]
    done = subprocess.run(["apt-get", *options, "download", *wanted], cwd=cache, check=False)
    if done.returncode != 0:
        sys.stderr.write(update.stdout[-2000:] + update.stderr[-2000:])
        sys.exit(f"prepare.py: apt-get download {' '.join(wanted)} failed (exit status {done.returncode})")


def extract(deb: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="busybox-") as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        binary = Path(tmp) / "bin" / "busybox"
        if not binary.is_file():
            sys.exit(f"prepare.py: {deb.name} has no /bin/busybox")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target / "busybox")


def prepare(platforms: list[str], dest: Path, cache: Path, *, offline: bool = False) -> None:
    unknown = [p for p in platforms if p not in ARCHES]
    if unknown:
        sys.exit(f"prepare.py: no busybox mapping for {', '.join(unknown)} (known: {', '.join(ARCHES)})")
    todo = [p for p in platforms if not (dest / ARCHES[p][1] / "bin" / "busybox").is_file()]
    if not todo:
        print(f"prepare.py: {dest} is ready for {', '.join(platforms)}", file=sys.stderr)
    missing = [ARCHES[p][0] for p in todo if _cached(cache, ARCHES[p][0]) is None]
    if missing and offline:
        sys.exit(
            f"prepare.py: {PACKAGE} for {', '.join(missing)} is not cached in {cache} and --offline "
            "was given; run `python3 examples/hello/prepare.py` (or .ci/install) once with network access"
        )
    if missing:
        fetch(cache, missing)
    for platform in todo:
        debian_arch, directory = ARCHES[platform]
        deb = _cached(cache, debian_arch)
        if deb is None:
            sys.exit(f"prepare.py: {PACKAGE} for {debian_arch} is not in {cache}")
        extract(deb, dest / directory / "bin")
        print(
            f"prepare.py: {platform}: {dest / directory / 'bin' / 'busybox'} from {deb.name}", file=sys.stderr
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", help="comma-separated platforms (default: those of splitbuild.toml)")
    parser.add_argument("--dest", type=Path, default=HERE / "rootfs", help="where rootfs/<arch> go")
    parser.add_argument("--cache", type=Path, default=None, help="where the .deb files are kept")
    parser.add_argument("--download-only", action="store_true", help="fill the cache, extract nothing")
    parser.add_argument(
        "--offline", action="store_true", help="never fetch: fail when the cache lacks a package"
    )
    args = parser.parse_args()
    platforms = [p.strip() for p in args.platform.split(",")] if args.platform else config_platforms()
    cache = args.cache or default_cache()
    if args.download_only:
        unknown = [p for p in platforms if p not in ARCHES]
        if unknown:
            sys.exit(f"prepare.py: no busybox mapping for {', '.join(unknown)} (known: {', '.join(ARCHES)})")
        missing = [ARCHES[p][0] for p in platforms if _cached(cache, ARCHES[p][0]) is None]
        if missing:
            fetch(cache, missing)
        return
    prepare(platforms, args.dest, cache, offline=args.offline)


if __name__ == "__main__":
    main()
