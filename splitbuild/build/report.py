"""The timing table of a local split build (plain text; ``--json`` gives the data instead)."""

from __future__ import annotations

from splitbuild.build.runner import BuildResult

__all__ = ["render_table"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_table(result: BuildResult) -> str:
    """Platform, native or emulated, build/export/push seconds and digest; then the emulation
    ratio, the index digest and the tags."""
    rows = [("PLATFORM", "MODE", "BUILD s", "EXPORT s", "PUSH s", "DIGEST")]
    for leg in result.legs:
        digest = leg.digest or ("FAILED" if leg.status == "failed" else "-")
        rows.append(
            (
                leg.platform,
                leg.mode,
                _seconds(leg.build_seconds),
                _seconds(leg.export_seconds),
                _seconds(leg.push_seconds),
                digest,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[i].rjust(widths[i]) for i in (2, 3, 4)]
        lines.append("  ".join([*cells, row[5]]))
    native, emulated = result.mean_build_seconds("native"), result.mean_build_seconds("emulated")
    ratio = result.emulation_ratio
    if ratio is not None and native is not None and emulated is not None:
        lines.append(
            f"emulation: {ratio:.1f}x the native build time "
            f"(mean {emulated:.2f} s emulated vs {native:.2f} s native, {result.jobs} job(s) at a time)"
        )
    if result.index is not None:
        count = len(result.succeeded)
        lines.append(f"index {result.index} ({count} platforms) in {result.seconds:.1f} s")
        lines.extend(f"  pushed    {ref}" for ref in result.tags)
        lines.extend(f"  unchanged {ref}" for ref in result.unchanged)
    return "\n".join(lines) + "\n"
