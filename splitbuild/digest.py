"""Content digests: compute, parse and verify ``algorithm:hex`` (sha256, sha384, sha512)."""

from __future__ import annotations

import hashlib
import re

from splitbuild.errors import DigestMismatch, InvalidDigest

__all__ = ["Verifier", "compute", "parse_digest", "verify_bytes"]

_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


def parse_digest(text: str) -> tuple[str, str]:
    """Split and validate a digest; returns ``(algorithm, hex)`` or raises :class:`InvalidDigest`."""
    m = _DIGEST_RE.match(text)
    if not m:
        raise InvalidDigest(f"invalid digest {text!r}: expected algorithm:hex, e.g. sha256:<64 hex digits>")
    algorithm, hexpart = m.group(1), m.group(2)
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidDigest(
            f"invalid digest {text!r}: unsupported algorithm {algorithm!r} (sha256, sha384, sha512)"
        )
    if len(hexpart) != length or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise InvalidDigest(f"invalid digest {text!r}: {algorithm} needs {length} lowercase hex digits")
    return algorithm, hexpart


def compute(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, *, what: str = "content") -> None:
    """Raise :class:`DigestMismatch` unless ``data`` hashes to ``digest``."""
    algorithm, _ = parse_digest(digest)
    got = compute(data, algorithm)
    if got != digest:
        raise DigestMismatch(f"{what}: digest mismatch: expected {digest}, got {got}")


class Verifier:
    """Incremental verification of a stream against an expected digest and size."""

    def __init__(self, digest: str, size: int | None = None, *, what: str = "blob") -> None:
        algorithm, _ = parse_digest(digest)
        self.digest = digest
        self.size = size
        self.what = what
        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self.received = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.received += len(chunk)
        if self.size is not None and self.received > self.size:
            raise DigestMismatch(f"{self.what}: more than the expected {self.size} bytes")

    def verify(self) -> None:
        if self.size is not None and self.received != self.size:
            raise DigestMismatch(f"{self.what}: got {self.received} bytes, expected {self.size}")
        got = f"{self._algorithm}:{self._hash.hexdigest()}"
        if got != self.digest:
            raise DigestMismatch(f"{self.what}: digest mismatch: expected {self.digest}, got {got}")
