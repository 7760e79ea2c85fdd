"""``verify``: every reference resolves to an index holding the platforms it must hold.

Each reference is read once (its bytes checked against the digest); every child is then checked
with a ``HEAD`` by digest (present, same size and media type). ``deep`` reads each child instead
(its bytes verified against its digest) and checks that every blob of an image child exists.
``require_attestations``: every platform image must have an attestation manifest, in the index
(BuildKit's ``attestation-manifest`` entries) or else among its referrers (an attestation pushed
with a ``subject``: one referrers lookup per image the index does not attest).
Problems are collected, not raised: :attr:`VerifyResult.ok` says whether all passed, and the CLI
exits with 7 when not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild.errors import NotFound, RegistryError, SplitbuildError, UsageError
from splitbuild.models import Descriptor, Platform
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, bounded, identifier, short
from splitbuild.referrers import kind_of, predicate_types
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    from splitbuild.client import Client

__all__ = ["RefCheck", "VerifyResult", "verify"]


@dataclass
class RefCheck:
    reference: str
    digest: str | None = None
    media_type: str | None = None
    platforms: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unattested: list[str] = field(default_factory=list)
    """With ``require_attestations``: platforms whose image has no attestation manifest."""
    problems: list[str] = field(default_factory=list)
    """Everything else wrong: not found, not an index, a child missing or different."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.unattested or self.problems)

    def summary(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("unexpected " + ", ".join(self.unexpected))
        if self.unattested:
            parts.append("no attestation for " + ", ".join(self.unattested))
        parts.extend(self.problems)
        return "; ".join(parts) if parts else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "ok": self.ok,
            "digest": self.digest,
            "mediaType": self.media_type,
            "platforms": list(self.platforms),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "unattested": list(self.unattested),
            "problems": list(self.problems),
        }


@dataclass
class VerifyResult:
    """The outcome of :func:`verify` for every reference; ``ok`` is true when every check passed."""

    platforms: list[str]
    exact: bool
    checks: list[RefCheck]
    requests: int = 0
    require_attestations: bool = False

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[RefCheck]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "platforms": list(self.platforms),
            "exact": self.exact,
            "requireAttestations": self.require_attestations,
            "references": [c.to_dict() for c in self.checks],
            "requests": self.requests,
        }


async def _check_child(repo: Repository, child: Descriptor, deep: bool) -> str | None:
    label = f"child {short(child.digest)}" + (f" ({child.platform})" if child.platform else "")
    try:
        if deep:
            manifest = await repo.get_manifest(child.digest)
            if manifest.size != child.size:
                return f"{label}: size {manifest.size}, index says {child.size}"
            for blob in manifest.blobs():
                if not await repo.has_blob(blob.digest):
                    return f"{label}: blob {short(blob.digest)} missing"
            return None
        found = await repo.head_manifest(child.digest)
    except NotFound:
        return f"{label}: missing"
    except RegistryError:
        raise  # the registry or the network failed: that is not a verdict on the image
    except SplitbuildError as exc:
        return f"{label}: {exc.message}"
    if found is None:
        return f"{label}: missing"
    if found.size != child.size:
        return f"{label}: size {found.size}, index says {child.size}"
    return None


async def _attested_by_referrer(repo: Repository, image: Descriptor) -> bool:
    """Whether an attestation of ``image`` is among its referrers."""
    found = await repo.list_referrers(image.digest)
    return any(kind_of(d, predicate_types(d)) == "attestation" for d in found)


async def _unattested(repo: Repository, children: list[Descriptor], jobs: int) -> list[str]:
    """The platforms whose image has no attestation, in the index or among its referrers."""
    attested = {c.attests for c in children if c.is_attestation}
    lacking: dict[str, Descriptor] = {}
    for child in children:
        if child.is_attestation or child.platform is None or child.platform.is_unknown:
            continue
        if child.digest not in attested:
            lacking.setdefault(child.platform.key, child)
    found = await bounded(list(lacking.values()), lambda d: _attested_by_referrer(repo, d), jobs)
    return [key for key, ok in zip(lacking, found, strict=True) if not ok]


async def _check(
    client: Client,
    text: RefLike,
    wanted: list[str],
    exact: bool,
    deep: bool,
    jobs: int,
    require_attestations: bool = False,
) -> RefCheck:
    ref = as_reference(text)
    check = RefCheck(str(ref))
    repo = client.repository(ref)
    try:
        manifest = await repo.get_manifest(identifier(ref))
    except NotFound:
        check.problems.append("not found")
        return check
    except RegistryError:
        raise  # the registry or the network failed: that is not a verdict on the image
    except SplitbuildError as exc:  # a digest mismatch, an invalid manifest
        check.problems.append(exc.message)
        return check
    check.digest, check.media_type = manifest.digest, manifest.media_type
    if not manifest.is_index:
        check.problems.append("a single image, not an index")
        return check
    children = manifest.children()
    images = [c for c in children if not c.is_attestation and c.platform and not c.platform.is_unknown]
    seen: dict[str, str] = {}
    for child in images:
        assert child.platform is not None
        key = child.platform.key
        if key in seen and seen[key] != child.digest:
            check.problems.append(f"platform {key} twice ({short(seen[key])}, {short(child.digest)})")
        seen.setdefault(key, child.digest)
    check.platforms = list(seen)
    check.missing = [p for p in wanted if p not in seen]
    if exact:
        check.unexpected = [p for p in seen if p not in wanted]
    digests = {c.digest for c in children}
    for att in children:
        if att.is_attestation and att.attests not in digests:
            check.problems.append(f"attestation {short(att.digest)} is for {att.attests}, not in the index")
    found = await bounded(children, lambda c: _check_child(repo, c, deep), jobs)
    check.problems.extend(p for p in found if p is not None)
    if require_attestations:
        try:
            check.unattested = await _unattested(repo, children, jobs)
        except RegistryError:
            raise
        except SplitbuildError as exc:
            check.problems.append(f"referrers: {exc.message}")
    return check


async def verify(
    client: Client,
    refs: Sequence[RefLike],
    platforms: Sequence[str],
    *,
    exact: bool = False,
    deep: bool = False,
    require_attestations: bool = False,
    jobs: int = DEFAULT_JOBS,
) -> VerifyResult:
    """Check each of ``refs``; never raises for what it finds (see :attr:`VerifyResult.ok`)."""
    if not refs:
        raise UsageError("no reference to verify")
    wanted = list(dict.fromkeys(Platform.parse(p).key for p in platforms))
    if not wanted:
        raise UsageError("no platform given: pass `platforms`, e.g. linux/amd64,linux/arm64")
    start = client.requests
    checks = await bounded(
        refs, lambda r: _check(client, r, wanted, exact, deep, jobs, require_attestations), jobs
    )
    return VerifyResult(wanted, exact, checks, client.requests - start, require_attestations)
