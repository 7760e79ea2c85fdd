"""The GitLab CI writer: config + plan -> :class:`~splitbuild.workflow.gitlab_model.Pipeline` -> YAML.

One build job per planned platform, pinned to its runner by ``tags:`` (GitLab.com hosted runners by
default, ``[ci.gitlab.runners]`` or ``[runners]`` for self-managed ones). Each builds with docker
buildx in docker-in-docker (or buildah, ``[ci.gitlab] builder``), pushes by digest when publishing,
and hands its digest to the merge job in a ``dotenv`` report; ``[test]`` and ``[scan]`` add a
smoke test to each build job and a scan job per leg (:mod:`.gitlab_checks`). The merge job
``needs:`` every build (and scan) job, logs in through ``SPLITBUILD_AUTH_*`` variables and runs
``splitbuild merge``, which reads the tag context from GitLab's ``CI_*`` variables. With
``[ci] sign = "cosign"`` a sign job then signs the index digest keyless (:mod:`.gitlab_signing`).
Merge requests build every platform and push nothing, and never sign; with ``[ci] previews``
those from the project itself push and publish ``mr-<iid>`` (a review-app environment whose stop
job deletes it, :mod:`.previews`).

The file has no global keys (``stages``, ``workflow``, ``default``, ``variables``) and its jobs do
not inherit ``default:``, so it works as ``.gitlab-ci.yml`` and as a file included from one.
"""

from __future__ import annotations

import re

from splitbuild.config import Config
from splitbuild.errors import ConfigError
from splitbuild.planner import Leg, Plan
from splitbuild.runners import check_foreign_labels
from splitbuild.workflow.gitlab_checks import (
    TRIVY_IMAGE,
    archive_file,
    check_scan_support,
    scan_dotenv,
    scan_report,
    scan_script,
    scan_variables,
    scan_verdict_variable,
)
from splitbuild.workflow.gitlab_model import (
    Artifacts,
    Environment,
    IdToken,
    Image,
    Job,
    Need,
    Pipeline,
    Reports,
    Retry,
    Service,
)
from splitbuild.workflow.gitlab_rules import preview_rules, publish_rules
from splitbuild.workflow.gitlab_scripts import (
    MERGE_DOTENV,
    build_script,
    digest_dotenv,
    digest_variable,
    merge_script,
    preview_stop_script,
)
from splitbuild.workflow.gitlab_signing import (
    ID_TOKEN_VARIABLE,
    SIGSTORE_AUDIENCE,
    sign_job_name,
    sign_script,
)
from splitbuild.workflow.header import DEFAULT_OUTPUTS, header, optional_note, regenerate_command
from splitbuild.workflow.merge_step import MergeCommand, merge_command
from splitbuild.workflow.previews import preview_config
from splitbuild.workflow.yaml_dump import dump_yaml

__all__ = [
    "DEFAULT_OUTPUT",
    "VARIABLE_PREFIX",
    "build_job_name",
    "build_pipeline",
    "gitlab_merge_command",
    "merge_job_name",
    "pipeline_notes",
    "preview_job_name",
    "preview_stop_job_name",
    "render_pipeline",
    "scan_job_name",
    "sign_job_name",
]

DEFAULT_OUTPUT = DEFAULT_OUTPUTS["gitlab"]
VARIABLE_PREFIX = "SPLITBUILD_"
ARTIFACTS_EXPIRE_IN = "1 week"
SCAN_EXPIRE_IN = "1 day"
_STAGES = frozenset({".pre", "build", "test", "deploy", ".post"})  # GitLab's default stages
_RETRY = Retry(max=1, when=["runner_system_failure", "api_failure", "scheduler_failure"])


def build_job_name(config: Config, leg: Leg) -> str:
    """``splitbuild:build:linux/arm64``."""
    return f"{config.ci.name}:build:{leg.platform}"


def scan_job_name(config: Config, leg: Leg) -> str:
    """``splitbuild:scan:linux/arm64``."""
    return f"{config.ci.name}:scan:{leg.platform}"


def merge_job_name(config: Config) -> str:
    """``splitbuild:merge``."""
    return f"{config.ci.name}:merge"


def gitlab_merge_command(config: Config, plan: Plan) -> MergeCommand:
    """The merge command with ``SPLITBUILD_``-prefixed variables (job variables rank below the
    project's CI/CD variables, so short names could be overridden by accident)."""
    return merge_command(config, plan).renamed(VARIABLE_PREFIX)


def _items(script: list[str]) -> list[str]:
    """One-line items as plain strings, longer ones as literal blocks."""
    return [item.removesuffix("\n") if item.count("\n") == 1 else item for item in script]


def _timeout(minutes: int) -> str:
    return f"{minutes} minutes"


def _check(config: Config) -> None:
    if config.ci.name.startswith("."):
        raise ConfigError(f"ci.name {config.ci.name!r}: GitLab hides jobs whose name starts with '.'")
    check_foreign_labels("gitlab", config.ci.merge_runner_labels, "merge-runner")
    check_scan_support(config)


def _build_job(config: Config, leg: Leg, command: MergeCommand) -> Job:
    gitlab = config.ci.gitlab
    script = build_script(config, leg, command)
    timeout = config.ci.qemu_timeout_minutes if leg.mode == "qemu" else config.ci.timeout_minutes
    services = None
    image = gitlab.buildah_image
    if gitlab.builder == "buildx":
        image = gitlab.docker_image
        command_line = [f"--mtu={gitlab.dind_mtu}"] if gitlab.dind_mtu else []
        command_line += [f"--insecure-registry={host}" for host in gitlab.insecure_registries]
        services = [Service(name=gitlab.dind_image, alias="docker", command=command_line or None)]
    return Job(
        stage=gitlab.build_stage,
        image=image,
        services=services,
        tags=list(leg.runner),
        rules=publish_rules(config.ci, merge_requests=True),
        interruptible=False,
        allow_failure=True if leg.platform in config.image.optional_platforms else None,
        timeout=_timeout(timeout),
        retry=_RETRY,
        variables=script.variables,
        script=_items(script.script),
        artifacts=_build_artifacts(config, leg),
    )


def _build_artifacts(config: Config, leg: Leg) -> Artifacts:
    """The digest's dotenv report; with ``[scan]`` also the image archive for the scan job (a day)."""
    if config.scan is None:
        return Artifacts(reports=Reports(dotenv=digest_dotenv(leg)), expire_in=ARTIFACTS_EXPIRE_IN)
    return Artifacts(
        paths=[archive_file(leg)], reports=Reports(dotenv=digest_dotenv(leg)), expire_in=SCAN_EXPIRE_IN
    )


def _scan_job(config: Config, leg: Leg, command: MergeCommand) -> Job:
    """The leg's scan job; an optional leg's may fail, handing its verdict to the merge job."""
    scan = config.scan
    assert scan is not None
    optional = leg.platform in config.image.optional_platforms
    verdict = scan_verdict_variable(digest_variable(leg, command)) if optional else None
    reports = Reports(container_scanning=scan_report(leg), dotenv=scan_dotenv(leg) if optional else None)
    return Job(
        stage=config.ci.gitlab.build_stage,
        image=Image(name=f"{TRIVY_IMAGE}:{scan.scanner_version}", entrypoint=[""]),
        tags=list(config.ci.merge_runner_labels),
        needs=[Need(job=build_job_name(config, leg), artifacts=True)],
        rules=publish_rules(config.ci, merge_requests=True),
        interruptible=False,
        allow_failure=True if optional else None,
        timeout=_timeout(config.ci.merge_timeout_minutes),
        retry=_RETRY,
        variables=scan_variables(config, leg),
        script=_items(scan_script(config, leg, verdict)),
        artifacts=Artifacts(reports=reports, expire_in=ARTIFACTS_EXPIRE_IN, when="always"),
    )


def _publish_needs(config: Config, plan: Plan) -> list[Need]:
    """What the merge and preview jobs wait for: every build job (its digest) and every scan job
    (an optional leg's for its verdict)."""
    needs = [Need(job=build_job_name(config, leg), artifacts=True) for leg in plan.legs]
    if config.scan is not None:
        optional = config.image.optional_platforms
        needs += [
            Need(job=scan_job_name(config, leg), artifacts=leg.platform in optional) for leg in plan.legs
        ]
    return needs


def _resource_group(config: Config) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.ci.name).strip("-") or "splitbuild"
    return f"{name}-merge-$CI_COMMIT_REF_SLUG"


def _merge_job(config: Config, plan: Plan, command: MergeCommand) -> Job | None:
    rules = publish_rules(config.ci, merge_requests=False)
    if not rules:
        return None
    script = merge_script(config, command)
    return Job(
        stage=config.ci.gitlab.merge_stage,
        image=config.ci.gitlab_python_image,
        tags=list(config.ci.merge_runner_labels),
        needs=_publish_needs(config, plan),
        rules=rules,
        interruptible=False,
        timeout=_timeout(config.ci.merge_timeout_minutes),
        retry=_RETRY,
        resource_group=_resource_group(config),
        variables=script.variables,
        script=_items(script.script),
        artifacts=Artifacts(reports=Reports(dotenv=MERGE_DOTENV), expire_in=ARTIFACTS_EXPIRE_IN),
    )


def preview_job_name(config: Config) -> str:
    """``splitbuild:preview``."""
    return f"{config.ci.name}:preview"


def preview_stop_job_name(config: Config) -> str:
    """``splitbuild:preview:stop``."""
    return f"{config.ci.name}:preview:stop"


PREVIEW_ENVIRONMENT = "preview/mr-$CI_MERGE_REQUEST_IID"


def _preview_jobs(config: Config, plan: Plan) -> dict[str, Job]:
    """``[ci] previews``: the preview job merges ``mr-<iid>`` for a merge request from this project
    and starts its review-app environment, whose ``on_stop`` job deletes the preview when the merge
    request is merged or closed (GitLab runs it then; it can also be run by hand)."""
    if not config.ci.previews:
        return {}
    gitlab = config.ci.gitlab
    command = gitlab_merge_command(preview_config(config), plan)
    script = merge_script(preview_config(config), command)
    stop = preview_stop_script(config)
    return {
        preview_job_name(config): Job(
            stage=gitlab.merge_stage,
            image=config.ci.gitlab_python_image,
            tags=list(config.ci.merge_runner_labels),
            needs=_publish_needs(config, plan),
            rules=preview_rules(config.ci, "preview"),
            interruptible=False,
            timeout=_timeout(config.ci.merge_timeout_minutes),
            retry=_RETRY,
            resource_group=_resource_group(config),
            environment=Environment(
                name=PREVIEW_ENVIRONMENT, action="start", on_stop=preview_stop_job_name(config)
            ),
            variables=script.variables,
            script=_items(script.script),
            artifacts=Artifacts(reports=Reports(dotenv=MERGE_DOTENV), expire_in=ARTIFACTS_EXPIRE_IN),
        ),
        preview_stop_job_name(config): Job(
            stage=gitlab.merge_stage,
            image=config.ci.gitlab_python_image,
            tags=list(config.ci.merge_runner_labels),
            needs=[],
            rules=preview_rules(config.ci, "stop"),
            interruptible=False,
            allow_failure=True,  # a manual job that does not block the merge request's pipeline
            timeout=_timeout(config.ci.merge_timeout_minutes),
            retry=_RETRY,
            environment=Environment(name=PREVIEW_ENVIRONMENT, action="stop"),
            variables=stop.variables,
            script=_items(stop.script),
        ),
    }


def _sign_job(config: Config) -> Job:
    script = sign_script(config)
    return Job(
        stage=config.ci.gitlab.merge_stage,
        image=config.ci.gitlab.cosign_image,
        tags=list(config.ci.merge_runner_labels),
        needs=[Need(job=merge_job_name(config), artifacts=True)],
        rules=publish_rules(config.ci, merge_requests=False),
        interruptible=False,
        timeout=_timeout(config.ci.merge_timeout_minutes),
        retry=_RETRY,
        id_tokens={ID_TOKEN_VARIABLE: IdToken(aud=SIGSTORE_AUDIENCE)},
        variables=script.variables,
        script=_items(script.script),
    )


def build_pipeline(config: Config, plan: Plan) -> Pipeline:
    """The pipeline model for ``config`` and its ``plan`` (provider ``gitlab``)."""
    if config.ci.provider != "gitlab" or plan.provider != "gitlab":
        raise ConfigError(
            "the GitLab writer needs a config and plan for provider 'gitlab'",
            hint="load the config with provider='gitlab' (splitbuild generate --ci gitlab)",
        )
    _check(config)
    command = gitlab_merge_command(config, plan)
    jobs = {build_job_name(config, leg): _build_job(config, leg, command) for leg in plan.legs}
    if config.scan is not None:
        jobs |= {scan_job_name(config, leg): _scan_job(config, leg, command) for leg in plan.legs}
    merge = _merge_job(config, plan, command)
    if merge is not None:
        jobs[merge_job_name(config)] = merge
        if config.ci.sign == "cosign":
            jobs[sign_job_name(config)] = _sign_job(config)
    jobs.update(_preview_jobs(config, plan))
    return Pipeline(jobs=jobs)


def pipeline_notes(config: Config, plan: Plan, output_path: str) -> list[str]:
    """Header lines that tell a GitLab user what the file cannot do by itself."""
    notes = optional_note([p for p in plan.platforms if p in config.image.optional_platforms])
    if output_path != DEFAULT_OUTPUT:
        notes.append(f"Include it from .gitlab-ci.yml: include: [{{local: {output_path}}}]")
    stages = [s for s in (config.ci.gitlab.build_stage, config.ci.gitlab.merge_stage) if s not in _STAGES]
    if stages:
        named = " and ".join(dict.fromkeys(stages))
        notes.append(f"Declare the stages {named} under stages: in .gitlab-ci.yml")
    if config.ci.schedule:
        crons = "; ".join(config.ci.schedule)
        notes.append(f"Scheduled pipelines publish; create them in Build > Pipeline schedules: {crons}")
    if config.ci.gitlab.builder == "buildah":
        notes.append(
            f"buildah pushes each platform to {config.image.names[0]} by digest, no tag, with "
            "uncompressed layers (a push by digest cannot recompress them)"
        )
        notes += [
            f"{leg.platform}: buildah emulates it with the QEMU binfmt handlers of the runner's host"
            for leg in plan.emulated
        ]
    if not publish_rules(config.ci, merge_requests=False):
        notes.append("No publishing trigger: merge requests build, nothing is merged or pushed")
    elif config.ci.sign == "cosign":
        notes.append(
            "Keyless signing needs GitLab.com and this CI config in the project itself "
            "(not in a child pipeline or another project)"
        )
    return notes


def render_pipeline(
    config: Config, plan: Plan, *, config_path: str, output_path: str, ci_flag: bool = False
) -> str:
    """The pipeline file's text: the header (naming ``config_path`` and the command that
    regenerates ``output_path``, with ``--ci gitlab`` when ``ci_flag``), then the YAML."""
    regenerate = regenerate_command(config_path, output_path, "gitlab", ci_flag=ci_flag)
    notes = pipeline_notes(config, plan, output_path)
    return header(plan, regenerate, config_path, notes) + dump_yaml(build_pipeline(config, plan).to_data())
