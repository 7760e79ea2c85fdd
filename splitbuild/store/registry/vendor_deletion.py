"""What to tell the user when a registry does not offer deletion through the registry API.

:func:`deletion_help` owns the vendor knowledge: GHCR deletes through the GitHub Packages API,
Docker Hub through its own API, ECR through ``batch-delete-image``, and CNCF distribution only
with deletion turned on. It makes no request; the manifest deletion attaches it as the hint of a
``405 Method Not Allowed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from splitbuild.reference import Reference

__all__ = ["deletion_help"]


def deletion_help(ref: Reference, tag: str | None = None) -> str:
    """What to use instead when a registry answers 405 to DELETE (its own API, or the setting)."""
    host = ref.registry
    owner, _, package = ref.repository.partition("/")
    if host == "ghcr.io":
        path = f"/orgs/{owner}/packages/container/{quote(package or owner, safe='')}/versions"
        return (
            f"GHCR deletes through the GitHub Packages API: find the version id with `gh api {path}`, "
            f"then `gh api -X DELETE {path}/VERSION_ID` (a personal account uses /user/packages/...)"
        )
    if host == "docker.io":
        target = f"tags/{tag}/" if tag else "tags/TAG/"
        return (
            "Docker Hub deletes tags through its own API: DELETE "
            f"https://hub.docker.com/v2/repositories/{ref.repository}/{target} with a Hub token, "
            "or in the web UI"
        )
    if ".dkr.ecr." in host:
        ident = f"imageTag={tag}" if tag else "imageDigest=DIGEST"
        return (
            "ECR deletes through its API: aws ecr batch-delete-image "
            f"--repository-name {ref.repository} --image-ids {ident}"
        )
    return (
        "the registry has deletion turned off or only offers it in its own API "
        "(CNCF distribution: set REGISTRY_STORAGE_DELETE_ENABLED=true)"
    )
