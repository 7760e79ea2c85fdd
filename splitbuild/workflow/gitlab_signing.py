"""Signing the published index on GitLab CI (``[ci] sign = "cosign"``).

A sign job runs after the merge job, where it runs, and reads the index digest from the merge
job's dotenv report (``SPLITBUILD_DIGEST``), so it signs by digest, never by tag. GitLab gives it
an OIDC token for the ``sigstore`` audience in ``SIGSTORE_ID_TOKEN`` (``id_tokens:``), which cosign
uses for keyless signing: the certificate's identity is the pipeline's top-level CI config at the
ref that ran it (``https://gitlab.com/GROUP/PROJECT//.gitlab-ci.yml@refs/heads/main``), its issuer
the GitLab instance (``https://gitlab.com``). The public Sigstore accepts only GitLab.com's tokens,
and only when the CI config lives in the project itself.

The job logs cosign in (into a private ``DOCKER_CONFIG``, removed when the job ends) to every
registry with the same CI/CD variables as the build jobs, signs ``IMAGE@DIGEST`` for every image
name, and prints the ``cosign verify`` command to expect. Its image is ``[ci.gitlab]
cosign-image``: cosign is installed from Alpine's packages unless the image already has it.
"""

from __future__ import annotations

import shlex

from splitbuild.config import Config
from splitbuild.workflow.gitlab_scripts import JobScript, job_dir_item, logins, required_checks

__all__ = ["ID_TOKEN_VARIABLE", "SIGSTORE_AUDIENCE", "sign_job_name", "sign_script"]

ID_TOKEN_VARIABLE = "SIGSTORE_ID_TOKEN"
SIGSTORE_AUDIENCE = "sigstore"
_PREFIX = "SPLITBUILD_"
_INSTALL = """\
if ! command -v cosign >/dev/null 2>&1; then
  apk add --no-cache cosign
fi
"""
_CHECK_DIGEST = r"""if ! printf '%s\n' "${SPLITBUILD_DIGEST:-}" | grep -qE '^sha256:[0-9a-f]{64}$'; then
  echo "splitbuild: the merge job gave no index digest to sign" >&2
  exit 1
fi
"""
_IMAGES = "@IMAGES@"
_VERIFY = r"""if [ -n "${CI_COMMIT_TAG:-}" ]; then
  ref="refs/tags/$CI_COMMIT_TAG"
else
  ref="refs/heads/$CI_COMMIT_REF_NAME"
fi
identity="$CI_SERVER_URL/$CI_PROJECT_PATH//$CI_CONFIG_PATH@$ref"
echo "Signed with cosign (keyless, by digest). Verify with:"
for image in @IMAGES@; do
  printf 'cosign verify "%s" \\\n  --certificate-identity "%s" \\\n  --certificate-oidc-issuer "%s"\n' \
    "$image@$SPLITBUILD_DIGEST" "$identity" "$CI_SERVER_URL"
done
"""


def sign_job_name(config: Config) -> str:
    """``splitbuild:sign``."""
    return f"{config.ci.name}:sign"


def sign_script(config: Config) -> JobScript:
    """Install cosign if needed, log in, check the digest, sign it under every image name, and
    print how to verify it."""
    variables = {"GIT_STRATEGY": "none"}
    images: list[str] = []
    for index, name in enumerate(config.image.names, start=1):
        variables[f"{_PREFIX}IMAGE_{index}"] = name
        images.append(f'"${_PREFIX}IMAGE_{index}"')
    credentials: list[str] = []
    for login in logins(config):
        variables.update(login.variables)
        credentials += required_checks(login.required)
        credentials.append(
            f"printf '%s' {login.password} | cosign login --username {login.username} "
            f"--password-stdin {shlex.quote(login.registry)}"
        )
    words = " ".join(images)
    script = [job_dir_item(config, "cosign"), _INSTALL]
    if credentials:
        script.append("".join(f"{line}\n" for line in credentials))
    script += [
        _CHECK_DIGEST,
        f'for image in {words}; do\n  cosign sign --yes "$image@$SPLITBUILD_DIGEST"\ndone\n',
        _VERIFY.replace(_IMAGES, words),
    ]
    return JobScript(variables, script)
