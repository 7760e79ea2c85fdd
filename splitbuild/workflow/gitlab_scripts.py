"""The POSIX ``sh`` scripts and variables of the GitLab jobs.

Every value from the config reaches a script through a job variable (``SPLITBUILD_*``) and is used
quoted (``"$SPLITBUILD_PLATFORM"``), so no config value is ever parsed as shell; the only literals
in the scripts are splitbuild's own (file names, options) and values the config validated to a
safe alphabet (registry hosts, secret ids and variable names). The scripts run in ``sh`` (the
``docker`` image is Alpine's BusyBox) and pass ``shellcheck --shell=sh``.

Registry credentials are CI/CD variables: a ``[ci.logins]`` entry names them (``username-var``,
``username-secret`` and ``password-secret`` all name GitLab CI/CD variables); the GitLab registry
(``[ci.gitlab] ci-registry``) defaults to the job's ``CI_REGISTRY_USER``/``CI_REGISTRY_PASSWORD``
and Docker Hub to ``DOCKERHUB_USERNAME``/``DOCKERHUB_TOKEN``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from splitbuild.auth.environment import registry_env_prefix
from splitbuild.config import DOCKER_HUB, Config, LoginConfig
from splitbuild.planner import Leg
from splitbuild.workflow.attestations import image_output_options, provenance_setting
from splitbuild.workflow.gitlab_checks import buildah_check_items, buildx_check_items, scan_gate
from splitbuild.workflow.gitlab_rules import PUSH_VARIABLE
from splitbuild.workflow.install_lock import requirements_text
from splitbuild.workflow.merge_step import MergeCommand
from splitbuild.workflow.previews import cleanup_script

__all__ = [
    "DEFAULT_BINFMT_IMAGE",
    "DIND_VARIABLES",
    "MERGE_DOTENV",
    "METADATA_FILE",
    "JobScript",
    "Login",
    "build_script",
    "digest_dotenv",
    "digest_variable",
    "job_dir_item",
    "logins",
    "merge_script",
    "preview_stop_script",
    "required_checks",
]

DEFAULT_BINFMT_IMAGE = "tonistiigi/binfmt:latest"
METADATA_FILE = "splitbuild-metadata.json"
MERGE_JSON = "splitbuild-merge.json"
MERGE_DOTENV = "splitbuild-merge.env"
_PREFIX = "SPLITBUILD_"
_PUSHING = f'[ "${PUSH_VARIABLE}" = true ]'
# docker:dind with TLS: the service writes its certificates to /certs, the job reads /certs/client.
DIND_VARIABLES = {
    "DOCKER_HOST": "tcp://docker:2376",
    "DOCKER_TLS_CERTDIR": "/certs",
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_CERT_PATH": "/certs/client",
}
_REGISTER_QEMU = 'docker run --privileged --rm "$SPLITBUILD_BINFMT_IMAGE" --install "$SPLITBUILD_QEMU"\n'
_BUILDAH_VARIABLES = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot", "BUILDAH_FORMAT": "oci"}
_WAIT_FOR_DOCKER = """\
tries=0
until docker info >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "splitbuild: the docker-in-docker service did not start" >&2
    exit 1
  fi
  sleep 1
done
"""
# The merge (and preview) jobs install as the GitHub merge job does (:mod:`.install_lock`): into a
# fresh venv of their own (any executor: a shell runner's Python is never touched, and the venv is
# removed when the job ends), the hash-locked dependencies first, then [ci] install without
# dependencies (a requirements file, so it may carry --hash), then pip check; the image's pip
# installs into the venv (--python, pip 22.3 or newer), nothing byte-compiled up front.
_MERGE_INSTALL = """\
SPLITBUILD_VENV=$(mktemp -d "${TMPDIR:-/tmp}/splitbuild-venv.XXXXXXXX")
trap 'rm -rf "$SPLITBUILD_VENV"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
python -m venv --without-pip "$SPLITBUILD_VENV"
printf '%s\\n' "$SPLITBUILD_LOCK" > "$SPLITBUILD_VENV/lock.txt"
printf '%s\\n' "$SPLITBUILD_INSTALL" > "$SPLITBUILD_VENV/install.txt"
splitbuild_pip() {
  python -m pip --python "$SPLITBUILD_VENV/bin/python" --disable-pip-version-check --no-input "$@"
}
splitbuild_pip install --no-compile --require-hashes --no-deps --only-binary=:all: \\
  -r "$SPLITBUILD_VENV/lock.txt"
splitbuild_pip install --no-compile --no-deps -r "$SPLITBUILD_VENV/install.txt"
splitbuild_pip check
export PATH="$SPLITBUILD_VENV/bin:$PATH"
"""
_MERGE_DIGEST = (
    'python -c \'import json, sys; print("SPLITBUILD_DIGEST=" + json.load(sys.stdin)["digest"])\''
    f" < {MERGE_JSON} > {MERGE_DOTENV}\n"
)
# With optional platforms, the ones left out too (comma-separated, empty when all arrived).
_MERGE_DIGEST_LEFT_OUT = (
    "python -c 'import json, sys; d = json.load(sys.stdin); "
    'print("SPLITBUILD_DIGEST=" + d["digest"]); print("SPLITBUILD_LEFT_OUT=" + ",".join(d["leftOut"]))\''
    f" < {MERGE_JSON} > {MERGE_DOTENV}\n"
)


@dataclass(frozen=True)
class Login:
    """How a job logs in to one registry: shell words for the user name and the password, the
    CI/CD variables that must be set, and job variables for literal user names."""

    registry: str
    username: str
    password: str
    required: tuple[str, ...]
    variables: dict[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    """Every variable the login reads (user name and password): a job that does not push logs
    in (for pulls) only when they are all set."""


@dataclass(frozen=True)
class JobScript:
    """A job's script items and the variables they read."""

    variables: dict[str, str]
    script: list[str]


def _ref(name: str) -> str:
    return f'"${name}"'


def _command(program: str, groups: Sequence[str]) -> str:
    return program + "".join(f" \\\n  {group}" for group in groups) + "\n"


def logins(config: Config) -> list[Login]:
    """The registries the jobs log in to (image registries, then other ``[ci.logins]`` hosts),
    without those set to ``false``."""
    out: list[Login] = []
    for index, registry in enumerate(config.registries, start=1):
        login = config.ci.logins.get(registry)
        if login is False:
            continue
        variables: dict[str, str] = {}
        if isinstance(login, LoginConfig):
            password = login.password_secret
            if login.username is not None:
                user_var = f"{_PREFIX}LOGIN_{index}_USERNAME"
                variables[user_var] = login.username
                required: tuple[str, ...] = (password,)
            else:
                user_var = login.username_var or login.username_secret or ""
                required = (user_var, password)
        elif registry == DOCKER_HUB:
            user_var, password = "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"
            required = (user_var, password)
        else:  # the GitLab registry: the job token
            user_var, password = "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD"
            required = ()
        out.append(Login(registry, _ref(user_var), _ref(password), required, variables, (user_var, password)))
    return out


def required_checks(names: Sequence[str]) -> list[str]:
    """One ``sh`` line per CI/CD variable that stops the job, naming it, when it is empty."""
    return [
        f': "${{{name}:?is empty: define the CI/CD variable {name}; '
        'protected variables reach only protected branches and tags}"'
        for name in names
    ]


def _login_item(config: Config, tool: str) -> tuple[dict[str, str], str | None]:
    """Check the credentials a publishing job needs, then log in to every registry whose
    credentials are set: a merge-request job logs in too (for pulls of private base images) when
    the variables reach it, and never pushes."""
    variables: dict[str, str] = {}
    checks: list[str] = []
    body: list[str] = []
    insecure = set(config.ci.gitlab.insecure_registries)
    for login in logins(config):
        variables.update(login.variables)
        checks += required_checks(login.required)
        present = " && ".join(f'[ -n "${{{name}:-}}" ]' for name in login.names)
        tls = " --tls-verify=false" if tool == "buildah" and login.registry in insecure else ""
        body.append(
            f"if {present}; then\n"
            f"  printf '%s' {login.password} | {tool} login{tls} --username {login.username} "
            f"--password-stdin {shlex.quote(login.registry)}\n"
            "fi\n"
        )
    if not body:
        return variables, None
    check = "".join(f"  {line}\n" for line in checks)
    prefix = f"if {_PUSHING}; then\n{check}fi\n" if checks else ""
    return variables, prefix + "".join(body)


def job_dir_item(config: Config, tool: str) -> str:
    """The first item of a ``tool`` job (``buildah``, ``docker``, ``cosign``): a private temporary
    directory for the job's credentials (and, with buildah, a local image name no other job
    uses), removed with the local image when the job ends, whether it succeeds or fails."""
    lines = ['SPLITBUILD_JOB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/splitbuild.XXXXXXXX")']
    cleanup = ['  rm -rf "$SPLITBUILD_JOB_DIR"']
    if tool == "buildah":
        lines.append('SPLITBUILD_LOCAL_IMAGE="localhost/splitbuild-${CI_JOB_ID:-job}-$$"')
        cleanup.insert(0, '  buildah rmi "$SPLITBUILD_LOCAL_IMAGE" >/dev/null 2>&1 || true')
    lines += ["splitbuild_cleanup() {", *cleanup, "}"]
    lines += ["trap splitbuild_cleanup EXIT", "trap 'exit 130' INT", "trap 'exit 143' TERM"]
    if tool == "buildah":
        lines.append('export REGISTRY_AUTH_FILE="$SPLITBUILD_JOB_DIR/auth.json"')
    else:
        lines.append('export DOCKER_CONFIG="$SPLITBUILD_JOB_DIR/docker"')
    hosts = " ".join(shlex.quote(host) for host in config.ci.gitlab.insecure_registries)
    if hosts and tool == "buildah":
        lines += [
            'SPLITBUILD_REGISTRIES_CONF="$SPLITBUILD_JOB_DIR/registries.conf"',
            'if [ -n "${CONTAINERS_REGISTRIES_CONF:-}" ]; then',
            '  cat "$CONTAINERS_REGISTRIES_CONF" > "$SPLITBUILD_REGISTRIES_CONF"',
            "elif [ -f /etc/containers/registries.conf ]; then",
            '  cat /etc/containers/registries.conf > "$SPLITBUILD_REGISTRIES_CONF"',
            "fi",
            f"printf '\\n[[registry]]\\nlocation = \"%s\"\\ninsecure = true\\n' {hosts} "
            '>> "$SPLITBUILD_REGISTRIES_CONF"',
            'export CONTAINERS_REGISTRIES_CONF="$SPLITBUILD_REGISTRIES_CONF"',
        ]
    elif hosts and tool == "docker":
        lines.append(
            f"printf '[registry.\"%s\"]\\n  http = true\\n  insecure = true\\n' {hosts} "
            '> "$SPLITBUILD_JOB_DIR/buildkitd.toml"'
        )
    return "".join(f"{line}\n" for line in lines)


def digest_variable(leg: Leg, command: MergeCommand) -> str:
    """The dotenv variable that carries ``leg``'s digest to the merge job."""
    return command.digest_env[leg.platform]


def digest_dotenv(leg: Leg) -> str:
    """The dotenv report file of ``leg``'s build job."""
    return f"splitbuild-{leg.pair}.env"


def _build_options(config: Config) -> tuple[dict[str, str], list[str]]:
    """Variables and option groups shared by ``docker buildx build`` and ``buildah build``."""
    image = config.image
    variables: dict[str, str] = {}
    groups = [f"--platform {_ref(_PREFIX + 'PLATFORM')}"]
    if image.dockerfile is not None:
        variables[_PREFIX + "DOCKERFILE"] = image.dockerfile
        groups.append(f"--file {_ref(_PREFIX + 'DOCKERFILE')}")
    if image.target is not None:
        variables[_PREFIX + "TARGET"] = image.target
        groups.append(f"--target {_ref(_PREFIX + 'TARGET')}")
    for option, kind, items in (
        ("--build-arg", "BUILD_ARG", image.build_args),
        ("--build-context", "BUILD_CONTEXT", image.build_contexts),
    ):
        for index, (key, value) in enumerate(items.items(), start=1):
            name = f"{_PREFIX}{kind}_{index}"
            variables[name] = f"{key}={value}"
            groups.append(f"{option} {_ref(name)}")
    for secret_id, variable in image.secrets.items():
        groups.append(f"--secret {shlex.quote(f'id={secret_id},env={variable}')}")
    defaults = {
        "org.opencontainers.image.source": '"org.opencontainers.image.source=$CI_PROJECT_URL"',
        "org.opencontainers.image.revision": '"org.opencontainers.image.revision=$CI_COMMIT_SHA"',
    }
    groups += [f"--label {word}" for key, word in defaults.items() if key not in image.labels]
    for index, (key, value) in enumerate(image.labels.items(), start=1):
        name = f"{_PREFIX}LABEL_{index}"
        variables[name] = f"{key}={value}"
        groups.append(f"--label {_ref(name)}")
    return variables, groups


_EXPORTS_CACHE = f'{_PUSHING} && [ "$CI_PIPELINE_SOURCE" != merge_request_event ]'
"""A pushing job that is not a merge request's (a preview pushes, but never writes the cache that
release builds read)."""


def _cache_to(flag_value: str) -> str:
    return f"set --\nif {_EXPORTS_CACHE}; then\n  set -- --cache-to {flag_value}\nfi\n"


def _buildx(config: Config, leg: Leg, command: MergeCommand) -> JobScript:
    variables = dict(DIND_VARIABLES)
    variables[PUSH_VARIABLE] = "false"
    variables[_PREFIX + "PLATFORM"] = leg.platform
    login_vars, login_item = _login_item(config, "docker")
    script = [job_dir_item(config, "docker"), _WAIT_FOR_DOCKER]
    if login_item is not None:
        script.append(login_item)
    if leg.mode == "qemu":
        variables[_PREFIX + "BINFMT_IMAGE"] = config.ci.binfmt_image or DEFAULT_BINFMT_IMAGE
        variables[_PREFIX + "QEMU"] = leg.qemu_arch or ""
        script.append(_REGISTER_QEMU)
    create = "docker buildx create --name splitbuild --driver docker-container --use --bootstrap"
    if config.ci.gitlab.insecure_registries:
        create += ' --buildkitd-config "$SPLITBUILD_JOB_DIR/buildkitd.toml"'
    script.append(create + "\n")
    option_vars, groups = _build_options(config)
    variables.update(option_vars)
    groups.append(f"--provenance {provenance_setting(config.ci)}")
    if config.ci.sbom:
        groups.append("--sbom true")
    prefix = ""
    if config.ci.cache == "registry":
        ref, mode = f"{config.image.names[0]}:buildcache-{leg.pair}", config.ci.cache_mode
        variables[_PREFIX + "CACHE_FROM"] = f"type=registry,ref={ref}"
        variables[_PREFIX + "CACHE_TO"] = f"type=registry,ref={ref},mode={mode},ignore-error=true"
        groups += [f"--cache-from {_ref(_PREFIX + 'CACHE_FROM')}"]
        prefix = _cache_to(_ref(_PREFIX + "CACHE_TO"))
    attestations = ("--provenance", "--sbom")
    check_groups = [group for group in groups if not group.startswith(attestations)]
    check_vars, check_items = buildx_check_items(config, leg, check_groups)
    variables.update(check_vars)
    script += check_items
    if config.ci.cache == "registry":
        groups.append('"$@"')
    variables[_PREFIX + "IMAGES"] = ",".join(config.image.names)
    variables[_PREFIX + "CONTEXT"] = config.image.context
    groups += [
        '--output "type=image,\\"name=$SPLITBUILD_IMAGES\\",'
        f"{','.join(image_output_options(config.ci))},push-by-digest=true,name-canonical=true,"
        f'push=${PUSH_VARIABLE}"',
        f"--metadata-file {METADATA_FILE}",
        _ref(_PREFIX + "CONTEXT"),
    ]
    script.append(prefix + _command("docker buildx build", groups))
    script.append(_export_digest(leg, command))
    variables.update(login_vars)
    return JobScript(variables, script)


def _export_digest(leg: Leg, command: MergeCommand) -> str:
    return (
        'digest=$(grep -oE \'"containerimage\\.digest": *"sha256:[0-9a-f]{64}"\' '
        f"{METADATA_FILE} | grep -oE 'sha256:[0-9a-f]{{64}}' || true)\n"
        'if [ -z "$digest" ]; then\n'
        '  echo "splitbuild: docker buildx gave no image digest for $SPLITBUILD_PLATFORM" >&2\n'
        "  exit 1\n"
        "fi\n"
        f"printf '{digest_variable(leg, command)}=%s\\n' \"$digest\" > {digest_dotenv(leg)}\n"
    )


def _buildah(config: Config, leg: Leg, command: MergeCommand) -> JobScript:
    variables = dict(_BUILDAH_VARIABLES)
    variables[PUSH_VARIABLE] = "false"
    variables[_PREFIX + "PLATFORM"] = leg.platform
    login_vars, login_item = _login_item(config, "buildah")
    script = [job_dir_item(config, "buildah")]
    if login_item is not None:
        script.append(login_item)
    option_vars, groups = _build_options(config)
    variables.update(option_vars)
    prefix = ""
    if config.ci.cache == "registry":
        variables[_PREFIX + "CACHE_REPO"] = f"{config.image.names[0]}/buildcache"
        groups += ["--layers", f"--cache-from {_ref(_PREFIX + 'CACHE_REPO')}", '"$@"']
        prefix = _cache_to(_ref(_PREFIX + "CACHE_REPO"))
    variables[_PREFIX + "CONTEXT"] = config.image.context
    groups += [
        '--iidfile "$SPLITBUILD_JOB_DIR/image-id"',
        '--tag "$SPLITBUILD_LOCAL_IMAGE"',
        _ref(_PREFIX + "CONTEXT"),
    ]
    script.append(prefix + _command("buildah build", groups))
    check_vars, check_items = buildah_check_items(config, leg)
    variables.update(check_vars)
    script += check_items
    variables[_PREFIX + "REPOSITORY"] = config.image.names[0]
    script.append(
        f"if {_PUSHING}; then\n"
        '  image=$(cat "$SPLITBUILD_JOB_DIR/image-id")\n'
        "  digest=$(buildah inspect --type image --format '{{.FromImageDigest}}' \"$image\" "
        "| grep -oE '^sha256:[0-9a-f]{64}$' || true)\n"
        '  if [ -z "$digest" ]; then\n'
        '    echo "splitbuild: buildah gave no image digest for $SPLITBUILD_PLATFORM" >&2\n'
        "    exit 1\n"
        "  fi\n"
        '  buildah push --disable-compression "$image" "docker://$SPLITBUILD_REPOSITORY@$digest"\n'
        f"  printf '{digest_variable(leg, command)}=%s\\n' \"$digest\" > {digest_dotenv(leg)}\n"
        "fi\n"
    )
    variables.update(login_vars)
    return JobScript(variables, script)


def build_script(config: Config, leg: Leg, command: MergeCommand) -> JobScript:
    """The build job of ``leg``: log in (only when publishing), register QEMU (emulated legs,
    docker builder), build, push by digest (only when publishing), and write the digest to the
    leg's dotenv report under the merge command's variable for it."""
    if config.ci.gitlab.builder == "buildah":
        return _buildah(config, leg, command)
    return _buildx(config, leg, command)


def _credentials(config: Config, variables: dict[str, str]) -> list[str]:
    """Lines that check and export the registry credentials as ``SPLITBUILD_AUTH_*`` (adding the
    literal user names to ``variables``)."""
    credentials: list[str] = []
    for login in logins(config):
        variables.update(login.variables)
        prefix = registry_env_prefix(login.registry)
        credentials += required_checks(login.required)
        credentials += [
            f"export {prefix}USERNAME={login.username}",
            f"export {prefix}PASSWORD={login.password}",
        ]
    return credentials


def _install_variables(config: Config) -> dict[str, str]:
    """What :data:`_MERGE_INSTALL` installs: the hash-locked closure and ``[ci] install``."""
    return {_PREFIX + "INSTALL": config.ci.install, _PREFIX + "LOCK": requirements_text()}


def preview_stop_script(config: Config) -> JobScript:
    """The preview's stop job (``[ci] previews``): install splitbuild, hand over the credentials,
    and delete ``mr-<iid>`` in every image repository (:data:`~.previews.CLEANUP_SCRIPT`)."""
    variables = {"GIT_STRATEGY": "none", **_install_variables(config)}
    for index, name in enumerate(config.image.names, start=1):
        variables[f"{_PREFIX}IMAGE_{index}"] = name
    credentials = _credentials(config, variables)
    script = [_MERGE_INSTALL]
    if credentials:
        script.append("".join(f"{line}\n" for line in credentials))
    script.append(cleanup_script(len(config.image.names), "mr-$CI_MERGE_REQUEST_IID", _PREFIX))
    return JobScript(variables, script)


def merge_script(config: Config, command: MergeCommand) -> JobScript:
    """The merge job: install splitbuild, check every digest arrived, hand the registry
    credentials to splitbuild (``SPLITBUILD_AUTH_<REGISTRY>_*``), drop the digests of optional legs
    whose scan did not pass (with ``[scan]``), merge, and publish the index
    digest as ``SPLITBUILD_DIGEST`` in a dotenv report (with optional platforms, the ones left out
    as ``SPLITBUILD_LEFT_OUT``)."""
    variables = {"GIT_STRATEGY": "none", **_install_variables(config), **command.env}
    credentials = _credentials(config, variables)
    hosts = config.ci.gitlab.insecure_registries
    insecure = [word for host in hosts for word in ("--insecure-registry", host)]
    merge = command.script(flags=("--json", *insecure)).rstrip("\n") + f" > {MERGE_JSON}\n"
    script = [_MERGE_INSTALL]
    if credentials:
        script.append("".join(f"{line}\n" for line in credentials))
    if config.scan is not None and command.optional:  # an optional leg's image must have passed its scan
        script.append(scan_gate([command.digest_env[platform] for platform in command.optional]))
    script += [merge, f"cat {MERGE_JSON}\n", _MERGE_DIGEST_LEFT_OUT if command.optional else _MERGE_DIGEST]
    return JobScript(variables, script)
