"""Human-readable output of the commands (rich tables on a terminal, plain lines otherwise)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from splitbuild.merge import MergeResult


def merge_report(result: MergeResult) -> None:
    plan = result.plan
    index = plan.index
    out = sys.stdout.write
    if result.dry_run:
        out(json.dumps(json.loads(index.raw), indent=2) + "\n")
    out(f"index {index.digest} ({index.media_type}, {index.size} bytes)\n")
    for child in plan.children:
        desc = child.descriptor
        if desc.is_attestation:
            out(f"  attestation    {desc.digest}  (for {str(desc.attests)[:19]})\n")
        else:
            out(f"  {desc.platform!s:<14} {desc.digest}\n")
    for platform in plan.left_out:
        out(f"  {platform:<14} left out (optional platform: no image given)\n")
    if result.dry_run:
        out("planned writes:\n")
        for line in plan.planned_writes():
            out(f"  {line}\n")
        for ref in result.unchanged:
            out(f"  (unchanged) {ref}\n")
        for target in plan.tags_kept:
            out(f"  (kept: newer index already published) {target.ref}\n")
        out(f"dry run: nothing pushed ({result.requests} HTTP requests)\n")
        return
    for ref in result.pushed:
        out(f"pushed    {ref}\n")
    for ref in result.unchanged:
        out(f"unchanged {ref}\n")
    for target in plan.tags_kept:
        out(f"kept      {target.ref} (newer index already published: created {target.current_created})\n")
    if result.referrers:
        out(f"referrers {len(result.referrers)} copied\n")
    for cleanup in result.cleanup:
        report = cleanup.to_dict()
        deleted = (report["result"] or {}).get("deleted", [])
        out(f"displaced {report['repository']}: {len(deleted)} manifests deleted\n")
        for kept in report["kept"]:
            out(f"  kept {kept['digest']} ({kept['reason']})\n")
    for failure in result.cleanup_failed:
        from splitbuild.scrub import scrub

        message = f"displaced indexes in {failure.repository} not deleted: {failure.error}"
        sys.stderr.write(f"splitbuild: warning: {scrub(message)}\n")
    out(f"{result.requests} HTTP requests\n")
