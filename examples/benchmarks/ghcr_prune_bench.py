#!/usr/bin/env python3
"""Benchmark ``prune`` of a GHCR-like package of 2,000 versions under GitHub's secondary rate limit.

Starts a real registry (Debian's docker-registry) and the fake GitHub Packages API in front of it
(tests/github_api_server.py: every manifest a version, deletes refused with 405 on the registry
API and done through the versions API). Pushes N multi-platform indexes (an index, 2 images and 2
attestation manifests each: 5 versions), dated one a day, then prunes all but the newest
``--keep`` by push time, through the GitHub API.

The fake enforces the documented secondary limit (900 points a minute, a ``DELETE`` costs 5, a
``GET`` 1; 403 with ``Retry-After`` beyond it), and the provider keeps GitHub's advice of one second
between mutations. ``--time-scale S`` shrinks every minute and second of both by S, so that a run
takes seconds; the printed projection multiplies the waits back. ``--no-spacing`` drops the
one-second spacing to show what the secondary limit alone costs.

Usage: python3 examples/benchmarks/ghcr_prune_bench.py [--versions 2000] [--keep 40]
       [--time-scale 60] [--no-spacing] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from splitbuild.client import Client  # noqa: E402
from splitbuild.ops import RetentionPolicy, prune  # noqa: E402
from splitbuild.ops._common import bounded  # noqa: E402
from splitbuild.providers.ghcr import GhcrProvider  # noqa: E402
from splitbuild.reference import Reference, parse_reference  # noqa: E402
from splitbuild.retry import RetryPolicy  # noqa: E402
from tests.github_api_server import FakeGitHub  # noqa: E402
from tests.images import push  # noqa: E402
from tests.ops_support import multiarch, revisions  # noqa: E402
from tests.registry_server import start_registry  # noqa: E402

TOKEN = "ghp_benchmark"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


async def run(args: argparse.Namespace) -> dict[str, object]:
    indexes = args.versions // 5
    backend = start_registry(Path(tempfile.mkdtemp(prefix="ghcr-bench-")))
    github = FakeGitHub(
        backend,
        owners={"acme": "orgs"},
        tokens={TOKEN: {"read:packages", "delete:packages"}},
        points_per_minute=900,
        time_scale=args.time_scale,
    ).start()
    name = "acme/app"
    try:
        async with Client(env={}) as client:
            repo = client.repository(parse_reference(f"{backend.host}/{name}"))
            images = [multiarch(seed=f"bench{i}") for i in range(indexes)]

            async def one(i: int) -> None:
                await push(repo, images[i], f"sha-{i:04d}")
                when = NOW - dt.timedelta(days=indexes - i)
                for digest in (images[i].digest, *(c.digest for c in images[i].children)):
                    github.times[digest] = (when, when)

            started = time.monotonic()
            await bounded(range(indexes), one, 16)
            seeded = time.monotonic() - started
            stored = len(revisions(backend, name))
            front = parse_reference(f"{github.host}/{name}")
            assert isinstance(front, Reference)
            provider = GhcrProvider(
                front,
                TOKEN,
                retry=RetryPolicy(attempts=50, max_delay=60.0, total=3600.0),
                api_url=github.url,
                mutation_interval=0.0 if args.no_spacing else 1.0 / args.time_scale,
            )
            async with provider:
                before = client.requests
                started = time.monotonic()
                result = await prune(
                    client,
                    front,
                    RetentionPolicy(keep_last=args.keep),
                    dry_run=False,
                    now=NOW,
                    provider=provider,
                )
                elapsed = time.monotonic() - started
                registry_requests = client.requests - before
    finally:
        github.stop()
        backend.stop()
    calls = Counter((method, status) for method, _, status in github.log)
    deleted = len(result.outcome.deleted) if result.outcome else 0
    limited = sum(n for (_, status), n in calls.items() if status == 403)
    return {
        "versions": stored,
        "deleted": deleted,
        "kept_tags": args.keep,
        "seconds": round(elapsed, 2),
        # at real time the documented rules alone need: a second between mutations (with spacing),
        # and 5 points a DELETE out of 900 a minute
        "real_time_lower_bound_seconds": round(
            max(deleted * 5 / 900 * 60, 0 if args.no_spacing else deleted)
        ),
        "seed_seconds": round(seeded, 1),
        "api_requests": sum(calls.values()),
        "api_by_method_status": {f"{m} {s}": n for (m, s), n in sorted(calls.items())},
        "secondary_limit_hits": limited,
        "registry_requests": registry_requests,
        "time_scale": args.time_scale,
        "spacing": not args.no_spacing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--keep", type=int, default=40)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--no-spacing", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = anyio.run(run, args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"prune of {figures['versions']} GHCR versions: {figures['deleted']} deleted in "
        f"{figures['seconds']} s at time scale {args.time_scale:g} (the documented limits need at least "
        f"{figures['real_time_lower_bound_seconds']} s at real time); {figures['api_requests']} GitHub API "
        f"requests ({figures['secondary_limit_hits']} answered 403 by the secondary limit), "
        f"{figures['registry_requests']} registry requests"
    )
    print(f"  API requests by method and status: {figures['api_by_method_status']}")
    print(f"  (seeding the registry took {figures['seed_seconds']} s)")


if __name__ == "__main__":
    main()
