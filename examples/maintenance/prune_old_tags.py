#!/usr/bin/env python3
"""Delete old CI tags (``sha-<commit>`` by default) from a repository, keeping the recent ones.

Prints the plan; deletes only with ``--yes``. Tags other tags still need (a release tag pointing
at the same index, an index sharing an image) keep what they need.

    python examples/maintenance/prune_old_tags.py ghcr.io/acme/app --keep-last 20 --older-than 30d
    python examples/maintenance/prune_old_tags.py ghcr.io/acme/app --keep-last 20 --older-than 30d --yes
"""

from __future__ import annotations

import argparse

import anyio

import splitbuild
from splitbuild.ops import parse_duration


async def main(args: argparse.Namespace) -> None:
    policy = splitbuild.RetentionPolicy(
        keep_last=args.keep_last,
        older_than=parse_duration(args.older_than),
        include=args.include,
    )
    async with splitbuild.Registry() as reg:
        result = await reg.prune(args.repository, policy, dry_run=not args.yes)
    verb = "deleted" if args.yes else "would delete"
    for tag, why in result.plan.remove.items():
        print(f"{verb} {tag}: {why}")
    for tag, why in result.plan.keep.items():
        print(f"kept {tag}: {why}")
    print(f"{verb} {len(result.plan.manifests)} manifests ({result.requests} requests)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", help="e.g. ghcr.io/acme/app")
    parser.add_argument("--keep-last", type=int, default=10, help="keep this many recent tags (10)")
    parser.add_argument("--older-than", default="30d", help="delete only tags older than this (30d)")
    parser.add_argument("--include", default=r"sha-[0-9a-f]+", help="tags the policy applies to")
    parser.add_argument("--yes", action="store_true", help="delete (default: print the plan)")
    anyio.run(main, parser.parse_args())
