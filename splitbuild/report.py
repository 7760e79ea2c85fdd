"""Reports for CI systems (GitHub step summary) built from a merge result's JSON form."""

from __future__ import annotations

from typing import Any

__all__ = ["github_merge_summary"]


def github_merge_summary(data: dict[str, Any]) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the index, its platforms and digests, the tags."""
    title = "splitbuild merge (dry run)" if data.get("dryRun") else "splitbuild merge"
    lines = [
        f"### {title}",
        "",
        f"Index `{data['digest']}` ({data['mediaType']}, {data['size']} bytes)",
        "",
        "| platform | digest |",
        "|---|---|",
    ]
    lines += [f"| `{p['platform']}` | `{p['digest']}` |" for p in data["platforms"]]
    for a in data.get("attestations", []):
        lines.append(f"| attestation for `{a['attests'][:19]}` | `{a['digest']}` |")
    lines.append("")
    if data.get("leftOut"):
        lines.append(
            "Optional platforms left out (their builds gave no image): "
            + ", ".join(f"`{p}`" for p in data["leftOut"])
        )
        lines.append("")
    if data.get("tags"):
        lines.append("Tags pushed: " + ", ".join(f"`{t}`" for t in data["tags"]))
    if data.get("unchanged"):
        lines.append("Tags already up to date: " + ", ".join(f"`{t}`" for t in data["unchanged"]))
    if data.get("kept"):
        lines.append(
            "Tags kept on a newer index: "
            + ", ".join(f"`{k['tag']}` (created {k['created']})" for k in data["kept"])
        )
    if data.get("failed"):
        lines.append("Tags that failed: " + ", ".join(f"`{f['tag']}`" for f in data["failed"]))
    lines.append("")
    return "\n".join(lines) + "\n"
