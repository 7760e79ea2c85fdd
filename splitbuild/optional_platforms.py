"""Required and optional platforms: which platforms an index must hold, which it may lack.

A merge names the platforms its index must hold (``platforms``, the *required* set) and the ones
it may publish without (``optional``): the build leg of an optional platform may fail, and the
merge then publishes the others and reports the optional platforms it *left out*. A required
platform is never left out: a missing one refuses the merge before anything is written. A
platform in neither set is unexpected (an error too), so the index holds exactly the required
platforms and the optional ones that arrived.

The shrink guard takes the same notion: a tag whose current index has a platform the new index
lacks is refused (unless shrinking is allowed) except when that platform is optional, so that a
failed optional leg does not stop the publish of the others, while a platform dropped from the
configuration still needs the explicit allowance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from splitbuild.errors import UsageError, VerificationError
from splitbuild.index import Entry
from splitbuild.models import Platform

__all__ = ["PlatformSets", "check_coverage", "normalized"]


def normalized(platforms: Iterable[str]) -> list[str]:
    """Platform keys (``linux/arm64/v8`` -> ``linux/arm64``), in order, without repeats."""
    return list(dict.fromkeys(Platform.parse(p).key for p in platforms))


@dataclass(frozen=True)
class PlatformSets:
    """The required platforms (``None``: any set) and the optional ones (disjoint from them)."""

    required: tuple[str, ...] | None
    optional: tuple[str, ...] = ()

    @classmethod
    def of(cls, required: Sequence[str] | None, optional: Sequence[str] | None) -> PlatformSets:
        """Normalised sets; a platform both required and optional is a :class:`UsageError`."""
        req = None if required is None else tuple(normalized(required))
        opt = tuple(normalized(optional or ()))
        both = sorted(set(req or ()) & set(opt))
        if both:
            raise UsageError(
                f"platform {', '.join(both)} is both required (`platforms`) and optional "
                "(`optional_platforms`): give each platform once"
            )
        if req is not None and not req and opt:
            raise UsageError("every platform is optional: at least one platform must be required")
        return cls(req, opt)

    def left_out(self, got: Iterable[str]) -> list[str]:
        """The optional platforms not in ``got``, in the order they were given."""
        present = set(got)
        return [p for p in self.optional if p not in present]

    def may_lose(self, platform: str) -> bool:
        """A tag may lose ``platform`` without an explicit allowance: it is optional."""
        return platform in self.optional


def check_coverage(children: Sequence[Entry], sets: PlatformSets) -> list[str]:
    """Check the image platforms of ``children`` against ``sets``; return the optional platforms
    left out. A missing required platform, or one in neither set, is a :class:`VerificationError`
    (exit 7), raised before anything is written."""
    by_platform = {e.platform_key: e for e in children if not e.descriptor.is_attestation}
    got = {key for key in by_platform if key is not None}
    if sets.required is None:
        return sets.left_out(got)
    missing = sorted(set(sets.required) - got)
    extra = sorted(got - set(sets.required) - set(sets.optional))
    if missing or extra:
        parts = []
        if missing:
            what = "missing required" if sets.optional else "missing"
            parts.append(f"{what} {', '.join(missing)}")
        if extra:
            parts.append("unexpected " + ", ".join(f"{p} (from {by_platform[p].origin})" for p in extra))
        message = "platform set mismatch: " + "; ".join(parts)
        if missing and sets.optional:
            message += " (nothing published; only optional platforms may be left out)"
        raise VerificationError(message)
    return sets.left_out(got)
