"""The timing table of a local split build (plain text; ``--json`` gives the data instead)."""

from __future__ import annotations

from splitbuild.build.runner import BuildResult, LegResult

__all__ = ["render_table"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _status(leg: LegResult) -> str:
    if leg.digest is not None:
        return leg.digest
    if leg.status != "failed":
        return "-"
    return "FAILED" if leg.failed_step in (None, "build") else f"FAILED ({leg.failed_step})"


def render_table(result: BuildResult) -> str:
    """Platform, native or emulated, build/export/push seconds (and, when the run had them, the
    smoke test's seconds and the scan's findings) and digest; then the emulation ratio, the index
    digest and the tags."""
    checks = any(leg.test_seconds is not None or leg.findings is not None for leg in result.legs)
    checks = checks or any(leg.failed_step in ("test", "scan") for leg in result.legs)
    header = ["PLATFORM", "MODE", "BUILD s", "EXPORT s", "PUSH s"]
    header += ["TEST s", "FINDINGS"] if checks else []
    rows = [[*header, "DIGEST"]]
    for leg in result.legs:
        row = [
            leg.platform,
            leg.mode,
            _seconds(leg.build_seconds),
            _seconds(leg.export_seconds),
            _seconds(leg.push_seconds),
        ]
        if checks:
            row += [_seconds(leg.test_seconds), "-" if leg.findings is None else str(leg.findings)]
        rows.append([*row, _status(leg)])
    count = len(header)
    widths = [max(len(row[i]) for row in rows) for i in range(count)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[i].rjust(widths[i]) for i in range(2, count)]
        lines.append("  ".join([*cells, row[count]]))
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
