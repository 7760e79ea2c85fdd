"""Signing and attesting the published index in the GitHub Actions merge job.

Both act on the index digest the merge step outputs (``steps.merge.outputs.digest``), never on a
tag, and both run only where the merge job runs (never for pull requests).

* ``[ci] sign = "cosign"``: install cosign with the pinned ``sigstore/cosign-installer``, then
  ``cosign sign --yes IMAGE@DIGEST`` for every image name, keyless: the job's OIDC token
  (``id-token: write``) gets a short-lived Sigstore certificate whose identity is this workflow at
  the ref that ran it (``https://github.com/OWNER/REPO/.github/workflows/FILE@REF``) and whose
  issuer is GitHub's token service. The step summary shows the ``cosign verify`` command that
  checks exactly that identity and issuer.
* ``[ci] attest = true``: one pinned ``actions/attest-build-provenance`` step per image name
  (``subject-name`` the fully qualified repository, ``subject-digest`` the index digest,
  ``push-to-registry``), which needs ``attestations: write`` and ``id-token: write``. No storage
  record is created: that would need ``artifact-metadata: write`` and works only for
  organization-owned repositories.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbuild.config import DOCKER_HUB, Config, image_registry
from splitbuild.workflow.github_model import Grant, Step
from splitbuild.workflow.pins import pin

__all__ = [
    "GITHUB_OIDC_ISSUER",
    "MERGE_DIGEST",
    "attest_steps",
    "attestation_subject",
    "sign_steps",
    "signing_permissions",
]

GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"
MERGE_DIGEST = "${{ steps.merge.outputs.digest }}"
_SIGN_SCRIPT = """\
if [[ ! "$DIGEST" =~ ^sha256:[0-9a-f]{{64}}$ ]]; then
  echo "::error::the merge step gave no index digest to sign"
  exit 1
fi
for image in {images}; do
  cosign sign --yes "$image@$DIGEST"
done
identity="$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF"
{{
  echo "### Signed with cosign"
  echo
  echo "Keyless, by digest. Verify with:"
  echo
  echo '```sh'
  for image in {images}; do
    printf 'cosign verify %q \\\\\\n  --certificate-identity %q \\\\\\n  --certificate-oidc-issuer %q\\n' \\
      "$image@$DIGEST" "$identity" "$OIDC_ISSUER"
  done
  echo '```'
  echo
  echo "The identity is this workflow at the ref that ran it; for any ref of it, use"
  echo "--certificate-identity-regexp instead."
}} >> "$GITHUB_STEP_SUMMARY"
"""


def signing_permissions(config: Config) -> dict[str, Grant]:
    """The merge job's extra ``GITHUB_TOKEN`` permissions for ``sign`` and ``attest``."""
    ci = config.ci
    permissions: dict[str, Grant] = {}
    if ci.sign or ci.attest:
        uses = ", ".join(
            what for what, on in (("cosign", ci.sign), ("provenance attestation", ci.attest)) if on
        )
        permissions["id-token"] = Grant(
            level="write", why=f"keyless signing ({uses}) with the job's OIDC token"
        )
    if ci.attest:
        permissions["attestations"] = Grant(level="write", why="store the build provenance attestation")
    return permissions


def _image_env(names: Sequence[str]) -> dict[str, str]:
    return {f"IMAGE_{index}": name for index, name in enumerate(names, start=1)}


def sign_steps(config: Config) -> list[Step]:
    """Install cosign, sign the index in every repository, show how to verify it (``sign``)."""
    if config.ci.sign != "cosign":
        return []
    images = _image_env(config.image.names)
    words = " ".join(f'"${name}"' for name in images)
    return [
        Step(name="Install cosign", uses=pin("sigstore/cosign-installer")),
        Step(
            name="Sign the index with cosign",
            env={"DIGEST": MERGE_DIGEST, **images, "OIDC_ISSUER": GITHUB_OIDC_ISSUER},
            shell="bash",
            run=_SIGN_SCRIPT.format(images=words),
        ),
    ]


def attestation_subject(name: str) -> str:
    """The fully qualified repository ``actions/attest-build-provenance`` pushes to: the registry
    host spelled out, Docker Hub as ``index.docker.io`` (as the action asks), official images
    under ``library/``."""
    registry = image_registry(name)
    first, sep, rest = name.partition("/")
    has_host = bool(sep) and ("." in first or ":" in first or first == "localhost" or first.startswith("["))
    path = rest if has_host else name
    if registry != DOCKER_HUB:
        return f"{registry}/{path}"
    return f"index.docker.io/{path if '/' in path else 'library/' + path}"


def attest_steps(config: Config) -> list[Step]:
    """One build provenance attestation of the index per image name (``attest``)."""
    if not config.ci.attest:
        return []
    return [
        Step(
            name=f"Attest the provenance of {name}",
            uses=pin("actions/attest-build-provenance"),
            with_={
                "subject-name": attestation_subject(name),
                "subject-digest": MERGE_DIGEST,
                "push-to-registry": "true",
                "create-storage-record": "false",
            },
        )
        for name in config.image.names
    ]
