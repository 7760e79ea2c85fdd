"""The vulnerability scan of one built platform, before it is pushed anywhere.

The scanner reads the OCI image layout the builder wrote: ``trivy image --input LAYOUT`` or
``grype oci-dir:LAYOUT``, with the ``[scan]`` threshold, ``ignore-unfixed`` and allow-list, and
writes SARIF next to the layout. A scanner that exits non-zero having written SARIF with results
found something at or above the threshold (:class:`ScanFindings`); one that exits non-zero
without results failed to scan (:class:`~splitbuild.build.builders.StepFailed`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from splitbuild.build.builders import LegDir, LineCallback, StepFailed
from splitbuild.build.process import run_logged
from splitbuild.config import ScanConfig
from splitbuild.errors import BuildError, ConfigError, Refused

__all__ = ["FINDINGS_EXIT", "ScanFindings", "Scanner", "count_results", "find_scanner"]

FINDINGS_EXIT = 3
"""The exit status trivy is told to use for findings (``--exit-code``)."""


class ScanFindings(Refused):
    """A scan found vulnerabilities at or above the threshold: the platform is not pushed."""

    def __init__(
        self, platform: str, count: int, severity: str, report: Path, *, every_severity: bool = False
    ) -> None:
        found = f"{count} vulnerabilit{'y' if count == 1 else 'ies'}"
        if every_severity:  # grype's report lists all it found; it failed on one at the threshold
            what = f"{found}, at least one at or above {severity}"
        else:
            what = f"{found} at or above {severity}"
        super().__init__(f"{platform}: the scan found {what}")
        self.platform = platform
        self.count = count
        self.report = report


def count_results(sarif: Path) -> int | None:
    """The number of results in a SARIF file, None when there is no readable one."""
    try:
        doc = json.loads(sarif.read_bytes())
    except (OSError, ValueError):
        return None
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list):
        return None
    return sum(len(run.get("results") or []) for run in runs if isinstance(run, dict))


@dataclass(frozen=True)
class Scanner:
    """The scanner program at ``executable`` with the ``[scan]`` settings; ``root`` resolves the
    allow-list (the repository root)."""

    executable: str
    settings: ScanConfig
    root: Path

    def argv(self, layout: Path, report: Path) -> list[str]:
        settings = self.settings
        allow = None if settings.allow_list is None else str(self.root / settings.allow_list)
        if settings.scanner == "grype":
            argv = [self.executable, f"oci-dir:{layout}", "--fail-on", settings.severity]
            argv += ["--output", "sarif", "--file", str(report)]
            if settings.ignore_unfixed:
                argv.append("--only-fixed")
            if allow is not None:
                argv += ["--config", allow]
            return argv
        argv = [self.executable, "image", "--input", str(layout), "--exit-code", str(FINDINGS_EXIT)]
        argv += ["--severity", ",".join(s.upper() for s in settings.severities)]
        argv += ["--format", "sarif", "--output", str(report)]
        if settings.ignore_unfixed:
            argv.append("--ignore-unfixed")
        if allow is not None:
            argv += ["--ignorefile", allow]
        return argv

    async def run(self, leg: LegDir, layout: Path, on_line: LineCallback | None) -> int:
        """Scan the image at ``layout``; the number of findings reported (0 when it passed).
        Raises :class:`ScanFindings` at the threshold, :class:`StepFailed` when the scanner failed."""
        report = leg.path / "scan.sarif"
        ran = await run_logged(self.argv(layout, report), log=leg.log, on_line=on_line)
        count = count_results(report)
        if ran.ok:
            return count or 0
        if count:
            grype = self.settings.scanner == "grype"
            raise ScanFindings(leg.platform, count, self.settings.severity, report, every_severity=grype)
        raise StepFailed(leg.platform, f"scan ({self.settings.scanner})", ran, leg.log)


def find_scanner(settings: ScanConfig, root: Path, path: str | None = None) -> Scanner:
    """The scanner ``settings`` names, found on ``path`` (default ``PATH``); :class:`BuildError`
    saying it is not installed otherwise."""
    executable = shutil.which(settings.scanner, path=path)
    if executable is None:
        raise BuildError(
            f"the scan needs {settings.scanner}, which is not installed (not found on PATH): "
            "nothing was built",
            hint=f"install {settings.scanner}, or build without the scan",
        )
    if settings.allow_list is not None and not (root / settings.allow_list).is_file():
        where = root / settings.allow_list
        raise ConfigError(f"scan.allow-list {settings.allow_list!r}: {where} does not exist")
    return Scanner(executable, settings, root)
