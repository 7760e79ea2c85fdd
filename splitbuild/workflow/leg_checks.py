"""The smoke test and vulnerability scan steps of a GitHub/Forgejo build job (``[test]``, ``[scan]``).

With either table, a build job first builds its platform into the runner's docker engine
(build-push-action with ``load``, under a local name no registry knows, with the same inputs as
the push and only ``cache-from``), then:

1. **Smoke test**: ``docker run`` of that image on the leg's own runner (an emulated leg runs it
   under the QEMU the job set up), with the ``[test]`` command for the platform;
2. **Scan**: the scanner (trivy from ``aquasecurity/setup-trivy``, or grype from
   ``anchore/scan-action/download-grype``, both pinned) reads the loaded image and exits non-zero
   on a finding at or above ``[scan] severity``, writing SARIF;
3. only then the build step pushes by digest (its cache makes the second build quick) and the
   digest goes to the merge: a failed test or scan fails the job, so nothing is merged;
4. whatever happened, a summary (per platform: the smoke test's outcome, the scan's outcome and
   the number of findings) goes to the step summary, and on GitHub the SARIF goes to code
   scanning (``github/codeql-action/upload-sarif``, category ``splitbuild-<platform>``), which
   needs ``security-events: write``: granted to the build jobs only, and only with ``[scan]``.

Values reach the scripts through ``env:``; the test command's words are one variable each.
"""

from __future__ import annotations

from splitbuild.config import Config, ScanConfig
from splitbuild.planner import Leg
from splitbuild.workflow.github_model import Grant, Step
from splitbuild.workflow.pins import pin

__all__ = [
    "CHECK_BUILD_ID",
    "SARIF_FILE",
    "check_build_step",
    "check_image",
    "check_permissions",
    "check_steps",
    "has_checks",
    "report_steps",
]

CHECK_BUILD_ID = "check-build"
SARIF_FILE = "${{ runner.temp }}/splitbuild-scan.sarif"
FINDINGS_EXIT = "3"
_NOT_FORK = (
    "github.event_name != 'pull_request' "
    "|| github.event.pull_request.head.repo.full_name == github.repository"
)
_SUMMARY_HEAD = """\
{
  echo "### $PLATFORM"
  echo ""
  echo "| check | outcome | findings |"
  echo "|---|---|---|"
"""
_SUMMARY_TEST = """\
  echo "| smoke test | ${TEST_OUTCOME:-not run} | |"
"""
_SUMMARY_SCAN = """\
  findings="-"
  if [ -f "$SARIF" ]; then
    findings=$( (grep -o '"ruleId"' "$SARIF" || true) | wc -l | tr -d ' ')
  fi
  echo "| scan ($SCANNER, $SEVERITY and above) | ${SCAN_OUTCOME:-not run} | $findings |"
"""


def has_checks(config: Config, leg: Leg) -> bool:
    """Whether ``leg``'s job runs a smoke test or a scan."""
    test = config.test is not None and config.test.command_for(leg.platform) is not None
    return test or config.scan is not None


def check_image(leg: Leg) -> str:
    """The local name of the image the checks run on (never pushed)."""
    return f"splitbuild-check:{leg.pair}"


def check_build_step(leg: Leg, inputs: dict[str, str], env: dict[str, str] | None) -> Step:
    """The build into the runner's docker engine: the push's ``inputs`` (and secrets ``env``)
    without outputs, cache export and attestations (the docker exporter takes none)."""
    with_ = {k: v for k, v in inputs.items() if k not in ("outputs", "cache-to", "provenance", "sbom")}
    with_ |= {"provenance": "false", "load": "true", "tags": check_image(leg)}
    build = pin("docker/build-push-action")
    return Step(name="Build for the checks", id=CHECK_BUILD_ID, uses=build, with_=with_, env=env)


def _test_step(config: Config, leg: Leg) -> Step | None:
    command = None if config.test is None else config.test.command_for(leg.platform)
    if command is None:
        return None
    env = {"PLATFORM": leg.platform, "CHECK_IMAGE": check_image(leg)}
    words = []
    for index, word in enumerate(command, start=1):
        env[f"TEST_ARG_{index}"] = word
        words.append(f'"$TEST_ARG_{index}"')
    script = (
        f"args=({' '.join(words)})\n"
        'docker run --rm --platform "$PLATFORM" --entrypoint "${args[0]}" "$CHECK_IMAGE" "${args[@]:1}"\n'
    )
    return Step(name="Smoke test", id="test", env=env, shell="bash", run=script)


def _scanner_steps(scan: ScanConfig) -> list[Step]:
    if scan.scanner == "grype":
        return [
            Step(
                name="Set up grype",
                id="grype",
                uses=pin("anchore/scan-action/download-grype"),
                with_={"grype-version": f"v{scan.scanner_version}"},
            )
        ]
    return [
        Step(
            name="Set up trivy",
            uses=pin("aquasecurity/setup-trivy"),
            with_={"version": f"v{scan.scanner_version}", "cache": "true"},
        )
    ]


def _scan_step(scan: ScanConfig, leg: Leg) -> Step:
    env = {"CHECK_IMAGE": check_image(leg), "SARIF": SARIF_FILE, "SEVERITY": scan.severity}
    if scan.allow_list is not None:
        env["ALLOW_LIST"] = scan.allow_list
    if scan.scanner == "grype":
        env["GRYPE"] = "${{ steps.grype.outputs.cmd }}"
        lines = ['"$GRYPE" "docker:$CHECK_IMAGE" --fail-on "$SEVERITY" --output sarif --file "$SARIF"']
        if scan.ignore_unfixed:
            lines.append("--only-fixed")
        if scan.allow_list is not None:
            lines.append('--config "$ALLOW_LIST"')
    else:
        env["SEVERITIES"] = ",".join(s.upper() for s in scan.severities)
        lines = [
            f'trivy image --exit-code {FINDINGS_EXIT} --severity "$SEVERITIES"',
            '--format sarif --output "$SARIF"',
        ]
        if scan.ignore_unfixed:
            lines.append("--ignore-unfixed")
        if scan.allow_list is not None:
            lines.append('--ignorefile "$ALLOW_LIST"')
        lines.append('"$CHECK_IMAGE"')
    return Step(name="Scan", id="scan", env=env, shell="bash", run=" \\\n  ".join(lines) + "\n")


def check_steps(config: Config, leg: Leg, inputs: dict[str, str], env: dict[str, str] | None) -> list[Step]:
    """The steps between the set-up and the push by digest (none without checks); ``inputs`` and
    ``env`` are the push step's."""
    if not has_checks(config, leg):
        return []
    steps = [check_build_step(leg, inputs, env)]
    test = _test_step(config, leg)
    if test is not None:
        steps.append(test)
    if config.scan is not None:
        steps += [*_scanner_steps(config.scan), _scan_step(config.scan, leg)]
    return steps


def report_steps(config: Config, leg: Leg) -> list[Step]:
    """After the digest export, whatever failed: the step summary, then (GitHub) the SARIF upload."""
    if not has_checks(config, leg):
        return []
    scan = config.scan
    env = {"PLATFORM": leg.platform}
    script = _SUMMARY_HEAD
    if config.test is not None and config.test.command_for(leg.platform) is not None:
        env["TEST_OUTCOME"] = "${{ steps.test.outcome }}"
        script += _SUMMARY_TEST
    if scan is not None:
        env |= {"SCAN_OUTCOME": "${{ steps.scan.outcome }}", "SARIF": SARIF_FILE}
        env |= {"SCANNER": scan.scanner, "SEVERITY": scan.severity}
        script += _SUMMARY_SCAN
    script += '} >> "$GITHUB_STEP_SUMMARY"\n'
    steps = [Step(name="Summary of the checks", if_="!cancelled()", env=env, shell="bash", run=script)]
    if scan is not None and config.ci.provider == "github":
        steps.append(
            Step(
                name="Upload the scan to code scanning",
                if_=f"!cancelled() && steps.scan.outcome != 'skipped' && ({_NOT_FORK})",
                uses=pin("github/codeql-action/upload-sarif"),
                with_={"sarif_file": SARIF_FILE, "category": f"splitbuild-{leg.pair}"},
            )
        )
    return steps


def check_permissions(config: Config) -> dict[str, Grant]:
    """What a build job's token needs for the checks: ``security-events: write`` for the SARIF
    upload (GitHub, with ``[scan]``)."""
    if config.scan is None or config.ci.provider != "github":
        return {}
    return {"security-events": Grant(level="write", why="upload the scan's SARIF to code scanning")}
