#!/usr/bin/env python3
"""Mirror a multi-arch image (every matching tag) to another registry, byte for byte.

Indexes, platform images, attestations and blobs are copied with their digests unchanged;
what the mirror already has is skipped, so a re-run copies only new tags.

    python examples/maintenance/mirror.py docker.io/library/alpine registry.example.com/mirror/alpine \\
        --include '3\\.\\d+' --platform linux/amd64,linux/arm64
"""

from __future__ import annotations

import argparse

import anyio

import splitbuild
from splitbuild.ops import tag_filter


async def main(args: argparse.Namespace) -> None:
    platforms = args.platform.split(",") if args.platform else None
    async with splitbuild.Registry() as reg:
        # One listing of the source: the tags to mirror come from it, and each copy is handed it to
        # find cosign's sha256-<hex>.sig/.att/.sbom tags instead of listing the source again.
        selected = tag_filter(args.include)
        every = (await reg.list_tags(args.source)).tags
        wanted = [t for t in every if selected(t)]
        for tag in wanted:
            result = await reg.copy(
                f"{args.source}:{tag}", f"{args.destination}:{tag}", platforms=platforms, source_tags=every
            )
            state = "unchanged" if result.unchanged else "copied"
            note = " (new index: platforms filtered)" if result.rewritten else ""
            print(f"{state} {tag} {result.digest}{note}")
        print(f"{len(wanted)} tags, {reg.requests} requests")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="repository to mirror, e.g. docker.io/library/alpine")
    parser.add_argument("destination", help="repository to mirror into")
    parser.add_argument("--include", default=None, help="only tags matching this regular expression")
    parser.add_argument("--platform", default=None, help="keep only these platforms (comma-separated)")
    anyio.run(main, parser.parse_args())
