#!/usr/bin/env python3
"""Audit that every release tag of a repository is a multi-arch index with the expected platforms.

Exits 1 and lists the tags that are single-platform, miss a platform, or have a missing child.

    python examples/maintenance/verify_platforms.py ghcr.io/acme/app --platform linux/amd64,linux/arm64
"""

from __future__ import annotations

import argparse
import sys

import anyio

import splitbuild


async def main(args: argparse.Namespace) -> int:
    async with splitbuild.Registry() as reg:
        releases = await reg.list_tags(args.repository, include=args.include)
        if not releases.tags:
            print(f"no tag of {args.repository} matches {args.include!r}")
            return 1
        refs = [f"{args.repository}:{tag}" for tag in releases.tags]
        result = await reg.verify(refs, args.platform.split(","), exact=args.exact)
    for check in result.checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.reference}: {check.summary()}")
    print(f"{len(result.failed)} of {len(result.checks)} release tags fail")
    return 0 if result.ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", help="e.g. ghcr.io/acme/app")
    parser.add_argument("--platform", required=True, help="platforms every release must have")
    parser.add_argument("--include", default=r"v?\d+\.\d+\.\d+", help="release tags (default: semver)")
    parser.add_argument("--exact", action="store_true", help="no other platforms allowed")
    sys.exit(anyio.run(main, parser.parse_args()))
