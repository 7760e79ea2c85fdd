"""The GitHub Actions writer (and Forgejo/Gitea Actions): config + plan ->
:class:`~splitbuild.workflow.github_model.Workflow` -> YAML.

The workflow has one build job per planned platform (``build-linux-amd64``, ...): it checks out
the repository (no persisted credentials), sets up QEMU only on an emulated leg and only for its
platform, builds with buildx and pushes by digest (not on pull requests), and exposes the digest
as its job output ``digest``; the images carry the provenance/SBOM attestations of ``[ci]`` as OCI
artifacts (:mod:`.attestations`). List inputs of build-push-action are CSV-quoted
(:mod:`.action_inputs`) so build-args and labels arrive byte for byte. ``merge`` (skipped on pull
requests; in the deployment environment ``[ci] environment`` when set) first installs splitbuild
into a venv from the hash-locked closure (:mod:`.install_lock`), only then logs in, and runs
``splitbuild merge`` with every digest, image and tag rule, then, with ``[ci] sign`` or
``attest``, signs or attests the index digest (:mod:`.github_signing`). Values reach ``run:``
scripts through ``env:`` only; every action is pinned to a commit SHA.

With ``[ci] provider = "forgejo"`` the same workflow is written for Forgejo/Gitea runners: actions
are referenced by full URL (``[ci.forgejo] actions-url``, default ``https://github.com``) because a
bare ``owner/action`` resolves against the instance's own action mirror, and no login uses
``GITHUB_TOKEN`` for ghcr.io. It already avoids what those runners lack: each digest is the output
of its own job (no matrix output merging, no artifacts), and nothing needs GitHub's OIDC tokens or
attestation API (the config refuses ``sign`` and ``attest`` for Forgejo).
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbuild.config import DOCKER_HUB, GHCR, Config, LoginConfig, image_registry
from splitbuild.errors import ConfigError
from splitbuild.planner import Leg, Plan
from splitbuild.runners import check_foreign_labels
from splitbuild.workflow.action_inputs import csv_list
from splitbuild.workflow.attestations import image_output_options, provenance_setting
from splitbuild.workflow.github_model import (
    Concurrency,
    Grant,
    Job,
    PullRequestTrigger,
    PushTrigger,
    ScheduleTrigger,
    Step,
    Triggers,
    Workflow,
)
from splitbuild.workflow.github_signing import attest_steps, sign_steps, signing_permissions
from splitbuild.workflow.header import DEFAULT_OUTPUTS, header, optional_note, regenerate_command
from splitbuild.workflow.install_lock import requirements_text
from splitbuild.workflow.leg_checks import check_permissions, check_steps, report_steps
from splitbuild.workflow.merge_step import merge_command
from splitbuild.workflow.pins import pin
from splitbuild.workflow.previews import (
    NOT_CLOSED,
    PULL_REQUEST_TYPES,
    cleanup_condition,
    cleanup_script,
    preview_condition,
    preview_config,
    pushes,
)
from splitbuild.workflow.yaml_dump import dump_yaml

__all__ = [
    "DEFAULT_OUTPUT",
    "build_job_id",
    "build_workflow",
    "header",
    "regenerate_command",
    "render_workflow",
]

DEFAULT_OUTPUT = DEFAULT_OUTPUTS["github"]
NOT_PR = "github.event_name != 'pull_request'"
_DIGEST_SCRIPT = """\
if [[ ! "$DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "::error::build-push-action gave no image digest for $PLATFORM"
  exit 1
fi
echo "digest=$DIGEST" >> "$GITHUB_OUTPUT"
"""
# Before any login: a fresh venv, the hash-locked dependencies, splitbuild itself without
# dependencies (a requirements file, so [ci] install may carry --hash), then pip check.
# Speed (the step is most of the job's own time): the venv gets no pip of its own (ensurepip
# installs and byte-compiles one, seconds), setup-python's pip installs into it (--python), and
# nothing is byte-compiled up front (--no-compile): the merge compiles the modules it imports.
_INSTALL_SCRIPT = """\
venv="$RUNNER_TEMP/splitbuild-venv"
lock="$RUNNER_TEMP/splitbuild-lock.txt"
install="$RUNNER_TEMP/splitbuild-install.txt"
python -m venv --without-pip "$venv"
printf '%s\\n' "$SPLITBUILD_LOCK" > "$lock"
printf '%s\\n' "$SPLITBUILD_INSTALL" > "$install"
pip=(python -m pip --python "$venv/bin/python" --disable-pip-version-check --no-input)
"${pip[@]}" install --no-compile --require-hashes --no-deps --only-binary=:all: -r "$lock"
"${pip[@]}" install --no-compile --no-deps -r "$install"
"${pip[@]}" check
echo "$venv/bin" >> "$GITHUB_PATH"
"""


def build_job_id(leg: Leg) -> str:
    """The id of ``leg``'s build job (``build-linux-arm-v7``); its output ``digest`` carries the
    pushed digest to the merge job."""
    return f"build-{leg.pair}"


def _runs_on(labels: Sequence[str]) -> str | list[str]:
    return labels[0] if len(labels) == 1 else list(labels)


# --- logins -------------------------------------------------------------------------------------


def _uses_github_token(config: Config, registry: str) -> bool:
    return config.ci.provider == "github" and registry == GHCR and GHCR not in config.ci.logins


def _login_step(config: Config, registry: str, condition: str | None) -> Step | None:
    login = config.ci.logins.get(registry)
    if login is False:
        return None
    with_: dict[str, str] = {}
    if registry != DOCKER_HUB:
        with_["registry"] = registry
    if isinstance(login, LoginConfig):
        if login.username is not None:
            with_["username"] = login.username
        elif login.username_var is not None:
            with_["username"] = f"${{{{ vars.{login.username_var} }}}}"
        else:
            with_["username"] = f"${{{{ secrets.{login.username_secret} }}}}"
        with_["password"] = f"${{{{ secrets.{login.password_secret} }}}}"
    elif registry == GHCR:
        with_["username"] = "${{ github.actor }}"
        with_["password"] = "${{ secrets.GITHUB_TOKEN }}"
    else:  # Docker Hub without a [ci.logins] entry: docker's documented names
        with_["username"] = "${{ vars.DOCKERHUB_USERNAME }}"
        with_["password"] = "${{ secrets.DOCKERHUB_TOKEN }}"
    return Step(name=f"Log in to {registry}", if_=condition, uses=pin("docker/login-action"), with_=with_)


def _login_steps(config: Config, condition: str | None) -> list[Step]:
    steps = [_login_step(config, registry, condition) for registry in config.registries]
    return [step for step in steps if step is not None]


def _permissions(config: Config, *, checkout: bool) -> dict[str, Grant]:
    permissions: dict[str, Grant] = {}
    if checkout:
        permissions["contents"] = Grant(level="read", why="check out the repository")
    if any(_uses_github_token(config, image_registry(name)) for name in config.image.names):
        permissions["packages"] = Grant(level="write", why="push to ghcr.io with GITHUB_TOKEN")
    return permissions


# --- build jobs ---------------------------------------------------------------------------------
# One job per platform, not a matrix: a matrix's legs share one set of job outputs, which GitHub
# merges but nektos/act (so Forgejo's runner) and Gitea before 1.23 do not; with one job per
# platform each digest is its own job's output on every server.


def _cache_inputs(config: Config, leg: Leg) -> dict[str, str]:
    mode = config.ci.cache_mode
    if config.ci.cache == "gha":
        scope = f"splitbuild-{leg.pair}"
        return {
            "cache-from": f"type=gha,scope={scope}",
            "cache-to": f"type=gha,scope={scope},mode={mode},ignore-error=true",
        }
    if config.ci.cache == "registry":
        ref = f"{config.image.names[0]}:buildcache-{leg.pair}"
        cache_to = f"type=registry,ref={ref},mode={mode},ignore-error=true"
        return {
            "cache-from": f"type=registry,ref={ref}",
            # Never from a pull request, previews or not: release builds read this cache.
            "cache-to": f"${{{{ {NOT_PR} && '{cache_to}' || '' }}}}",
        }
    return {}


def _build_inputs(config: Config, leg: Leg) -> dict[str, str]:
    image = config.image
    with_: dict[str, str] = {"context": image.context}
    if image.dockerfile is not None:
        with_["file"] = image.dockerfile
    if image.target is not None:
        with_["target"] = image.target
    with_["platforms"] = leg.platform
    if image.build_args:
        with_["build-args"] = csv_list((f"{k}={v}" for k, v in image.build_args.items()), "build-arg")
    if image.build_contexts:
        with_["build-contexts"] = csv_list(
            (f"{k}={v}" for k, v in image.build_contexts.items()), "build-context"
        )
    if image.secrets:
        with_["secret-envs"] = "".join(f"{k}={v}\n" for k, v in image.secrets.items())
    labels = {
        "org.opencontainers.image.source": "${{ github.server_url }}/${{ github.repository }}",
        "org.opencontainers.image.revision": "${{ github.sha }}",
        **image.labels,
    }
    with_["labels"] = csv_list((f"{k}={v}" for k, v in labels.items()), "label")
    with_["provenance"] = provenance_setting(config.ci)
    if config.ci.sbom:
        with_["sbom"] = "true"
    with_.update(_cache_inputs(config, leg))
    names = ",".join(image.names)
    options = ",".join(image_output_options(config.ci))
    with_["outputs"] = (
        f'type=image,"name={names}",{options},push-by-digest=true,name-canonical=true,'
        f"push=${{{{ {pushes(config)} }}}}"
    )
    return with_


def _build_environment(config: Config) -> str | None:
    """``[ci] environment`` for a build job when it pushes, none on pull requests (whose builds
    push nothing and must not wait on the environment's protection rules). An empty name is no
    environment."""
    name = config.ci.environment
    return None if name is None else f"${{{{ {NOT_PR} && '{name}' || '' }}}}"


def _build_job(config: Config, leg: Leg) -> Job:
    build_env = {name: f"${{{{ secrets.{name} }}}}" for name in dict.fromkeys(config.image.secrets.values())}
    qemu_steps: list[Step] = []
    if leg.qemu_arch is not None:
        qemu_with = {"platforms": leg.qemu_arch}
        if config.ci.binfmt_image is not None:
            qemu_with["image"] = config.ci.binfmt_image
        qemu_steps.append(
            Step(
                name=f"Set up QEMU for {leg.qemu_arch}", uses=pin("docker/setup-qemu-action"), with_=qemu_with
            )
        )
    inputs = _build_inputs(config, leg)
    steps = [
        Step(name="Check out", uses=pin("actions/checkout"), with_={"persist-credentials": "false"}),
        *qemu_steps,
        Step(name="Set up Buildx", uses=pin("docker/setup-buildx-action")),
        *_login_steps(config, pushes(config)),
        *check_steps(config, leg, inputs, build_env or None),
        Step(
            name="Build and push by digest",
            id="build",
            uses=pin("docker/build-push-action"),
            with_=inputs,
            env=build_env or None,
        ),
        Step(
            name="Export digest",
            id="digest",
            env={"DIGEST": "${{ steps.build.outputs.digest }}", "PLATFORM": leg.platform},
            shell="bash",
            run=_DIGEST_SCRIPT,
        ),
        *report_steps(config, leg),
    ]
    timeout = config.ci.qemu_timeout_minutes if leg.mode == "qemu" else config.ci.timeout_minutes
    return Job(
        name=f"build {leg.platform}",
        if_=NOT_CLOSED if config.ci.previews else None,
        runs_on=_runs_on(leg.runner),
        environment=_build_environment(config),
        timeout_minutes=timeout,
        continue_on_error=True if leg.platform in config.image.optional_platforms else None,
        permissions=_permissions(config, checkout=True) | check_permissions(config),
        outputs={"digest": "${{ steps.digest.outputs.digest }}"},
        steps=steps,
    )


# --- merge job ----------------------------------------------------------------------------------


def _merge_job(config: Config, plan: Plan) -> Job:
    command = merge_command(config, plan)
    env = dict(command.env)
    by_platform = {leg.platform: leg for leg in plan.legs}
    for platform, name in command.digest_env.items():
        env[name] = f"${{{{ needs.{build_job_id(by_platform[platform])}.outputs.digest }}}}"
    steps = [
        *_install_steps(config),
        *_login_steps(config, None),
        Step(name="Merge the platform images", id="merge", env=env, shell="bash", run=command.script()),
        *sign_steps(config),
        *attest_steps(config),
    ]
    return Job(
        name="merge",
        needs=[build_job_id(leg) for leg in plan.legs],
        if_=_merge_condition(config, plan),
        runs_on=_runs_on(config.ci.merge_runner_labels),
        environment=config.ci.environment,
        timeout_minutes=config.ci.merge_timeout_minutes,
        permissions=_permissions(config, checkout=False) | signing_permissions(config),
        outputs=_merge_outputs(config),
        steps=steps,
    )


def _merge_condition(config: Config, plan: Plan) -> str:
    """Not on pull requests; with optional platforms, also when an optional leg failed, but only if
    every required leg succeeded. ``continue-on-error`` alone is not enough: GitHub then counts the
    failed leg a success for ``needs``, but Forgejo/Gitea and act skip the jobs that need it."""
    if not config.image.optional_platforms:
        return NOT_PR
    required = [leg for leg in plan.legs if leg.platform not in config.image.optional_platforms]
    checks = [f"needs.{build_job_id(leg)}.result == 'success'" for leg in required]
    return " && ".join(["!cancelled()", NOT_PR, *checks])


def _merge_outputs(config: Config) -> dict[str, str]:
    """The index digest; with optional platforms, also the ones left out (comma-separated, empty
    when every platform arrived), for later jobs to act on."""
    outputs = {"digest": "${{ steps.merge.outputs.digest }}"}
    if config.image.optional_platforms:
        outputs["left-out"] = "${{ steps.merge.outputs.left-out }}"
    return outputs


# --- pull request previews ([ci] previews; splitbuild.workflow.previews) -------------------------


def _install_steps(config: Config) -> list[Step]:
    return [
        Step(
            name="Set up Python",
            uses=pin("actions/setup-python"),
            with_={"python-version": config.ci.python_version},
        ),
        Step(
            name="Install splitbuild (before any login)",
            env={"SPLITBUILD_INSTALL": config.ci.install, "SPLITBUILD_LOCK": requirements_text()},
            shell="bash",
            run=_INSTALL_SCRIPT,
        ),
    ]


def _preview_jobs(config: Config, plan: Plan) -> dict[str, Job]:
    """``preview`` (merge into ``pr-<N>``) and ``preview-cleanup`` (delete it on close)."""
    if not config.ci.previews:
        return {}
    preview = preview_config(config)
    command = merge_command(preview, plan)
    env = dict(command.env)
    by_platform = {leg.platform: leg for leg in plan.legs}
    for platform, name in command.digest_env.items():
        env[name] = f"${{{{ needs.{build_job_id(by_platform[platform])}.outputs.digest }}}}"
    condition = _merge_condition(config, plan).replace(NOT_PR, preview_condition())
    cleanup_env = {f"IMAGE_{i}": name for i, name in enumerate(config.image.names, start=1)}
    cleanup_env["PREVIEW_TAG"] = "pr-${{ github.event.pull_request.number }}"
    common = {
        "runs_on": _runs_on(config.ci.merge_runner_labels),
        "timeout_minutes": config.ci.merge_timeout_minutes,
        "permissions": _permissions(config, checkout=False),
    }
    return {
        "preview": Job(
            name="preview",
            needs=[build_job_id(leg) for leg in plan.legs],
            if_=condition,
            outputs={"digest": "${{ steps.preview.outputs.digest }}"},
            steps=[
                *_install_steps(config),
                *_login_steps(config, None),
                Step(name="Merge the preview", id="preview", env=env, shell="bash", run=command.script()),
            ],
            **common,
        ),
        "preview-cleanup": Job(
            name="delete the preview",
            if_=cleanup_condition(),
            steps=[
                *_install_steps(config),
                *_login_steps(config, None),
                Step(
                    name="Delete the preview",
                    env=cleanup_env,
                    shell="bash",
                    run=cleanup_script(len(config.image.names)),
                ),
            ],
            **common,
        ),
    }


# --- workflow -----------------------------------------------------------------------------------


def _triggers(config: Config) -> Triggers:
    ci = config.ci
    push = None
    if ci.branches or ci.tags:
        push = PushTrigger(branches=list(ci.branches) or None, tags=list(ci.tags) or None)
    types = list(PULL_REQUEST_TYPES) if ci.previews else None
    pull_request = PullRequestTrigger(branches=list(ci.branches) or None, types=types)
    return Triggers(
        push=push,
        pull_request=pull_request if ci.pull_requests else None,
        workflow_dispatch={} if ci.workflow_dispatch else None,
        schedule=[ScheduleTrigger(cron=cron) for cron in ci.schedule] or None,
    )


def build_workflow(config: Config, plan: Plan) -> Workflow:
    """The workflow model for ``config`` and its ``plan`` (GitHub or Forgejo provider)."""
    if config.ci.provider == "gitlab":
        raise ConfigError(
            "the GitHub Actions writer does not write GitLab pipelines",
            hint="use splitbuild.workflow.gitlab (splitbuild generate --ci gitlab)",
        )
    check_foreign_labels(config.ci.provider, config.ci.merge_runner_labels, "[ci] merge-runner")
    return Workflow(
        name=config.ci.name,
        on=_triggers(config),
        permissions={},
        concurrency=Concurrency(
            group="${{ github.workflow }}-${{ github.ref }}",
            cancel_in_progress="${{ github.event_name == 'pull_request' }}"
            if config.ci.pull_requests
            else False,
        ),
        jobs={
            **{build_job_id(leg): _build_job(config, leg) for leg in plan.legs},
            "merge": _merge_job(config, plan),
            **_preview_jobs(config, plan),
        },
    )


def render_workflow(
    config: Config, plan: Plan, *, config_path: str, output_path: str, ci_flag: bool = False
) -> str:
    """The workflow file's text: the header (naming ``config_path`` and the command that
    regenerates ``output_path``, with ``--ci`` when ``ci_flag``), then the YAML. Paths are shown
    as given, with ``/``."""
    provider = config.ci.provider
    regenerate = regenerate_command(config_path, output_path, provider, ci_flag=ci_flag)
    action_url = config.ci.forgejo.actions_url if provider == "forgejo" else None
    optional = [p for p in plan.platforms if p in config.image.optional_platforms]
    return header(plan, regenerate, config_path, optional_note(optional)) + dump_yaml(
        build_workflow(config, plan).to_data(action_url=action_url)
    )
