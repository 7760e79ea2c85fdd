"""The smoke test and vulnerability scan of the GitLab legs (``[test]``, ``[scan]``).

**Smoke test**, in the build job on the leg's own runner, after the build and before the push by
digest, with the tool the leg builds with: buildah runs the command in a working container of the
built image (chroot isolation; an emulated leg under the runner host's QEMU handlers); docker
buildx first builds the image into the docker-in-docker engine (``--load``, provenance off, the
cache of that build serving the push) and ``docker run``\\s it. A failing test fails the job
before anything is pushed.

**Scan**: the build job saves the image it tested as an archive artifact (``oci-archive`` with
buildah, ``docker save`` with buildx; kept a day) and a scan job per leg (``<name>:scan:<platform>``,
in the ``aquasec/trivy`` image of ``[scan] version``, on the merge job's runner: reading an archive
needs no particular CPU) runs ``trivy image --input`` with the threshold, ``ignore-unfixed`` and
allow-list, writing GitLab's container-scanning report (``artifacts:reports:container_scanning``,
trivy's ``gitlab.tpl`` template) and printing the number of findings. A finding at or above the
threshold fails the scan job; the merge job ``needs:`` every scan job, so nothing is merged. Only
trivy writes that report: ``[scan] scanner = "grype"`` is refused for GitLab.

An optional leg's scan job may fail (``allow_failure``): it writes its verdict into a ``dotenv``
report (``<digest variable>_SCAN=passed`` or ``failed``) and the merge job drops that leg's digest
unless the verdict says passed (:func:`scan_gate`), so an image whose scan found something, or
that was never scanned, is left out like a leg whose build failed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from splitbuild.config import Config
from splitbuild.errors import ConfigError
from splitbuild.planner import Leg

__all__ = [
    "TRIVY_IMAGE",
    "archive_file",
    "buildah_check_items",
    "buildx_check_items",
    "check_scan_support",
    "scan_dotenv",
    "scan_gate",
    "scan_report",
    "scan_script",
    "scan_variables",
    "scan_verdict_variable",
    "test_words",
]

TRIVY_IMAGE = "aquasec/trivy"
FINDINGS_EXIT = 3
_PREFIX = "SPLITBUILD_"


def check_scan_support(config: Config) -> None:
    """GitLab's container-scanning report comes from trivy's template: refuse grype."""
    if config.scan is not None and config.scan.scanner != "trivy":
        raise ConfigError(
            f"scan.scanner {config.scan.scanner!r} is not supported with provider 'gitlab': the "
            'container-scanning report is written by trivy\'s GitLab template; set scanner = "trivy"'
        )


def archive_file(leg: Leg) -> str:
    """The image archive the build job hands to the scan job."""
    return f"splitbuild-{leg.pair}.tar"


def scan_report(leg: Leg) -> str:
    """The scan job's container-scanning report."""
    return f"gl-container-scanning-report-{leg.pair}.json"


def scan_dotenv(leg: Leg) -> str:
    """The dotenv report in which an optional leg's scan job hands its verdict to the merge job."""
    return f"splitbuild-scan-{leg.pair}.env"


def scan_verdict_variable(digest_variable: str) -> str:
    """The dotenv variable of a scan's verdict, named after the digest variable it gates."""
    return f"{digest_variable}_SCAN"


def scan_gate(digest_variables: Sequence[str]) -> str:
    """Merge-job lines that drop each of ``digest_variables`` (optional legs' digests) unless its
    scan job reported ``passed``: a digest whose scan failed or never ran is left out."""
    return "".join(
        f'if [ "${{{scan_verdict_variable(name)}:-}}" != passed ]; then unset {name}; fi\n'
        for name in digest_variables
    )


def test_words(config: Config, leg: Leg) -> tuple[dict[str, str], list[str]]:
    """The ``[test]`` command for ``leg`` as job variables and their quoted references (empty when
    the platform has no test)."""
    command = None if config.test is None else config.test.command_for(leg.platform)
    if command is None:
        return {}, []
    variables = {f"{_PREFIX}TEST_{i}": word for i, word in enumerate(command, start=1)}
    return variables, [f'"${name}"' for name in variables]


def _failed(what: str) -> str:
    return f'  echo "splitbuild: {what} failed for $SPLITBUILD_PLATFORM" >&2\n'


def buildah_check_items(config: Config, leg: Leg) -> tuple[dict[str, str], list[str]]:
    """Variables and script items between ``buildah build`` and the push: the smoke test in a
    working container of the built image, then the archive for the scan job."""
    variables, words = test_words(config, leg)
    items: list[str] = []
    if words:
        items.append(
            'splitbuild_container=$(buildah from --quiet --pull=never --platform "$SPLITBUILD_PLATFORM" '
            '"$SPLITBUILD_LOCAL_IMAGE")\n'
            f'if ! buildah run "$splitbuild_container" -- {" ".join(words)}; then\n'
            '  buildah rm "$splitbuild_container" >/dev/null\n' + _failed("the smoke test") + "  exit 1\n"
            "fi\n"
            'buildah rm "$splitbuild_container" >/dev/null\n'
        )
    if config.scan is not None:
        items.append(f'buildah push "$SPLITBUILD_LOCAL_IMAGE" oci-archive:{archive_file(leg)}\n')
    return variables, items


def buildx_check_items(
    config: Config, leg: Leg, option_groups: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Variables and script items before the push build: the build into the engine (the push's
    ``option_groups``, no output), the smoke test with ``docker run``, the archive for the scan."""
    variables, words = test_words(config, leg)
    if not words and config.scan is None:
        return {}, []
    image = shlex.quote(f"splitbuild-check:{leg.pair}")
    groups = [*option_groups, "--provenance false", "--load", f"--tag {image}", '"$SPLITBUILD_CONTEXT"']
    items = ["docker buildx build" + "".join(f" \\\n  {group}" for group in groups) + "\n"]
    if words:
        entry, rest = words[0], " ".join(words[1:])
        run = f'docker run --rm --platform "$SPLITBUILD_PLATFORM" --entrypoint {entry} {image}'
        items.append(
            f"if ! {run}{' ' + rest if rest else ''}; then\n" + _failed("the smoke test") + "  exit 1\nfi\n"
        )
    if config.scan is not None:
        items.append(f"docker save --output {archive_file(leg)} {image}\n")
    return variables, items


def scan_variables(config: Config, leg: Leg) -> dict[str, str]:
    """The scan job's variables (``GIT_STRATEGY: none`` unless the allow-list is in the repository)."""
    scan = config.scan
    assert scan is not None
    variables = {
        f"{_PREFIX}PLATFORM": leg.platform,
        f"{_PREFIX}SEVERITY": scan.severity,
        f"{_PREFIX}SEVERITIES": ",".join(s.upper() for s in scan.severities),
    }
    if scan.allow_list is None:
        variables = {"GIT_STRATEGY": "none", **variables}
    else:
        variables[f"{_PREFIX}ALLOW_LIST"] = scan.allow_list
    return variables


def scan_script(config: Config, leg: Leg, verdict: str | None = None) -> list[str]:
    """``trivy image --input`` of the leg's archive into the report, the findings printed; the job
    fails at the threshold. ``verdict``: the variable that carries the outcome to the merge job
    (optional legs), written to :func:`scan_dotenv` either way."""
    scan = config.scan
    assert scan is not None
    report = scan_report(leg)
    options = [
        f"--input {archive_file(leg)}",
        f'--exit-code {FINDINGS_EXIT} --severity "$SPLITBUILD_SEVERITIES"',
    ]
    if scan.ignore_unfixed:
        options.append("--ignore-unfixed")
    if scan.allow_list is not None:
        options.append('--ignorefile "$SPLITBUILD_ALLOW_LIST"')
    options.append(f'--format template --template "@/contrib/gitlab.tpl" --output {report}')
    command = "trivy image" + "".join(f" \\\n  {option}" for option in options)
    outcome = ""
    if verdict is not None:
        outcome = (
            'if [ "$status" = 0 ]; then verdict=passed; else verdict=failed; fi\n'
            f"printf '{verdict}=%s\\n' \"$verdict\" > {scan_dotenv(leg)}\n"
        )
    return [
        "status=0\n" + command + " || status=$?\n",
        f"findings=$( (grep -o '\"identifiers\"' {report} 2>/dev/null || true) | wc -l | tr -d ' ')\n"
        'echo "splitbuild: $SPLITBUILD_PLATFORM: ${findings:-0} finding(s) at or above '
        '$SPLITBUILD_SEVERITY (trivy)"\n' + outcome + 'exit "$status"\n',
    ]
