"""Registry maintenance as coroutines: inspect, list tags, tag, copy, delete, prune, verify.

Each operation takes a :class:`~splitbuild.client.Client` and references (text such as
``ghcr.io/acme/app:1.2``, ``oci:./out:v1``, or parsed ones) and returns a typed result with a
``to_dict()`` (what ``--json`` prints)::

    from splitbuild.client import Client
    from splitbuild import ops

    async with Client() as client:
        info = await ops.inspect(client, "ghcr.io/acme/app:1.2")
        await ops.copy(client, "ghcr.io/acme/app:1.2", "registry.example.com/app:1.2")
        plan = await ops.prune(client, "ghcr.io/acme/app", ops.RetentionPolicy(keep_last=10))
"""

from __future__ import annotations

from splitbuild.ops._copy import CopyResult, copy, filter_platforms
from splitbuild.ops._delete import DeleteResult, UnusedResult, delete, delete_unused
from splitbuild.ops._inspect import Child, InspectResult, inspect
from splitbuild.ops._prune import PruneResult, RetentionPolicy, parse_duration, prune
from splitbuild.ops._tags import TagList, TagResult, add_tags, list_tags, tag_filter
from splitbuild.ops._verify import RefCheck, VerifyResult, verify
from splitbuild.ops.deletion import DeletionIncomplete, DeletionOutcome, DeletionPlan, Doomed

__all__ = [
    "Child",
    "CopyResult",
    "DeleteResult",
    "DeletionIncomplete",
    "DeletionOutcome",
    "DeletionPlan",
    "Doomed",
    "InspectResult",
    "PruneResult",
    "RefCheck",
    "RetentionPolicy",
    "TagList",
    "TagResult",
    "UnusedResult",
    "VerifyResult",
    "add_tags",
    "copy",
    "delete",
    "delete_unused",
    "filter_platforms",
    "inspect",
    "list_tags",
    "parse_duration",
    "prune",
    "tag_filter",
    "verify",
]
