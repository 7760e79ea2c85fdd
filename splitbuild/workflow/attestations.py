"""What the build legs attach to each platform image: BuildKit's provenance and SBOM attestations,
written the same way by every provider's buildx build.

``[ci] provenance`` (``"min"``, ``"max"`` or ``false``) and ``sbom`` become the build's
``provenance``/``sbom`` settings. The image exporter always writes OCI media types
(``oci-mediatypes=true``) and, when there are attestations, stores them as OCI artifacts
(``oci-artifact=true``): the attestation manifest gets an ``artifactType`` and a ``subject``
pointing at the image it describes, so registries with the OCI referrers API list it as a referrer
of that image. Either way the leg's index lists the attestation manifest with platform
``unknown/unknown`` (see :data:`splitbuild.planner.UNKNOWN_PLATFORM_NOTE`).
"""

from __future__ import annotations

from splitbuild.config import CiConfig

__all__ = ["image_output_options", "provenance_setting", "writes_attestations"]


def writes_attestations(ci: CiConfig) -> bool:
    """Whether the build legs attach attestations (provenance or SBOM) to their images."""
    return ci.provenance is not False or ci.sbom


def provenance_setting(ci: CiConfig) -> str:
    """The buildx ``provenance`` value: ``false`` or ``mode=min|max``."""
    return "false" if ci.provenance is False else f"mode={ci.provenance}"


def image_output_options(ci: CiConfig) -> tuple[str, ...]:
    """Image exporter options (for ``outputs``/``--output``) that shape what the legs push."""
    return (
        ("oci-mediatypes=true", "oci-artifact=true") if writes_attestations(ci) else ("oci-mediatypes=true",)
    )
