"""Image references: registry references (``ghcr.io/org/app:v1``) and OCI layout references (``oci:DIR:TAG``).

Registry references follow the grammar and normalization of ``github.com/distribution/reference``
``ParseNormalizedNamed`` exactly (``ubuntu`` is ``docker.io/library/ubuntu``); the shared conformance
vectors check it. The module is pure: no I/O, only ``re``, ``dataclasses`` and ``ipaddress``.

Digests are validated like go-digest v1.0.0 in a docker binary: ``sha256``, ``sha384`` and ``sha512``
are known, with lower-case hex of 64, 96 and 128 digits.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import ClassVar, Self, TypeAlias

from splitbuild.errors import InvalidDigest, InvalidReference

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_ALIASES",
    "DOCKER_HUB_ENDPOINT",
    "AnyReference",
    "LayoutReference",
    "Reference",
    "canonical_registry",
    "image_registry",
    "is_loopback",
    "is_registry_host",
    "parse_image_name",
    "parse_raw",
    "parse_reference",
    "validate_digest",
    "validate_tag",
]

DOCKER_HUB = "docker.io"
"""The canonical registry name of Docker Hub, as references spell it."""
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
"""The host that serves Docker Hub's ``/v2/`` API."""
_LEGACY_DOCKER_HUB = "index.docker.io"
DOCKER_HUB_ALIASES: frozenset[str] = frozenset(
    {DOCKER_HUB, _LEGACY_DOCKER_HUB, DOCKER_HUB_ENDPOINT, "registry.hub.docker.com"}
)
"""The registry hosts that all name Docker Hub (lower-case); :func:`canonical_registry` maps them to
``docker.io``. References keep what was written except ``index.docker.io``, as upstream does."""
_OFFICIAL_PREFIX = "library/"
_NAME_MAX = 255
_LAYOUT_SCHEME = "oci:"
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_SHOW_MAX = 120

# --- grammar (distribution/reference regexp.go; every class spelled out in ASCII) -------------------
_ALNUM = "[a-z0-9]+"
_SEPARATOR = "(?:[._]|__|-+)"
_PATH_COMPONENT = f"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = f"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = f"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST_ALGORITHM = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
_DIGEST = f"{_DIGEST_ALGORITHM}:[0-9a-fA-F]{{32,}}"

# Always used with fullmatch: Python's "$" would also match before a trailing newline.
_REFERENCE_RE = re.compile(f"((?:{_DOMAIN}/)?{_REMOTE_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_ANCHORED_NAME_RE = re.compile(f"(?:({_DOMAIN})/)?({_REMOTE_NAME})")
_DOMAIN_RE = re.compile(_DOMAIN)
_REMOTE_NAME_RE = re.compile(_REMOTE_NAME)
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_IDENTIFIER_RE = re.compile("[a-f0-9]{64}")
# go-digest: the shape a digest with an unknown algorithm must have to count as "unsupported".
_GO_DIGEST_RE = re.compile("[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile("[a-f0-9]+")
_ANY_HEX_RE = re.compile("[0-9a-fA-F]{32,}")
_REFERENCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@[]")


class _ReferenceError(InvalidReference):
    """An :class:`InvalidReference` that also records the upstream error kind (``ErrNameTooLong``, ...)."""

    def __init__(self, text: str, kind: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"invalid reference {_show(text)}: {reason}", hint=hint)
        self.kind = kind


def _show(text: str) -> str:
    """Quote user input for a one-line message: escapes control characters, shortens long input."""
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 3] + "..."
    return repr(text)


def _go_lower(text: str) -> str:
    """Go's ``strings.ToLower`` (simple case mapping), as far as it matters for this grammar."""
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower()


# --- digests ------------------------------------------------------------------------------------------


def _digest_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is not a valid digest (go-digest ``Digest.Validate``) as (kind, reason), or None."""
    algorithm, colon, encoded = text.partition(":")
    if not colon or not algorithm or not encoded:
        return "digest.ErrDigestInvalidFormat", "a digest is ALGORITHM:HEX, e.g. sha256:<64 hex digits>"
    size = _ALGORITHMS.get(algorithm)
    if size is None:
        if algorithm.lower() in _ALGORITHMS:
            return "digest.ErrDigestInvalidFormat", f"digest algorithm {algorithm!r} must be lowercase"
        if _GO_DIGEST_RE.fullmatch(text) is None:
            return "digest.ErrDigestInvalidFormat", "a digest is ALGORITHM:HEX, e.g. sha256:<64 hex digits>"
        known = ", ".join(_ALGORITHMS)
        return "digest.ErrDigestUnsupported", f"unsupported digest algorithm {algorithm!r} (known: {known})"
    if len(encoded) != size:
        return "digest.ErrDigestInvalidLength", f"{algorithm} needs {size} hex digits, not {len(encoded)}"
    if _LOWER_HEX_RE.fullmatch(encoded) is None:
        return "digest.ErrDigestInvalidFormat", f"a {algorithm} digest must be lowercase hexadecimal"
    return None


def validate_digest(text: str) -> str:
    """Return ``text`` if it is a valid digest (``sha256:<64 lower-case hex>``, sha384, sha512).

    Raises :class:`InvalidDigest` saying what is wrong.
    """
    problem = _digest_problem(text)
    if problem is not None:
        raise InvalidDigest(f"invalid digest {_show(text)}: {problem[1]}")
    return text


def validate_tag(text: str) -> str:
    """Return ``text`` if it is a valid tag (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``); else InvalidReference."""
    if _TAG_RE.fullmatch(text) is None:
        raise InvalidReference(f"invalid tag {_show(text)}: {_tag_problem(text)}")
    return text


def _tag_problem(tag: str) -> str:
    if not tag:
        return "a tag cannot be empty"
    if len(tag) > 128:
        return f"a tag has at most 128 characters, not {len(tag)}"
    return "a tag has letters, digits, '_', '.' and '-' only, and does not start with '.' or '-'"


# --- registry references ------------------------------------------------------------------------------


def _explain_format(text: str) -> tuple[str, str | None]:
    """Best-effort reason (and hint) why ``text`` does not match the reference grammar."""
    if not text:
        return "the reference is empty", None
    if "://" in text:
        scheme = text.partition("://")[0]
        return "an image reference has no URL scheme", f"remove {scheme + '://'!r}"
    for char in text:
        if char not in _REFERENCE_CHARS:
            if char.isspace() or not char.isprintable():
                return f"contains whitespace or a control character ({char!r})", None
            return f"contains the character {char!r}, which a reference cannot have", None
    name, at, digest = text.partition("@")
    if at:
        if "@" in digest:
            return "contains more than one '@'", None
        if not digest:
            return "nothing after '@' (expected a digest such as sha256:<64 hex digits>)", None
        if _DIGEST_RE.fullmatch(digest) is None:
            return f"digest {_show(digest)} is not ALGORITHM:HEX with at least 32 hex digits", None
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        if _DOMAIN_RE.fullmatch(name) and "/" not in name and "[" in name:
            return f"registry {_show(name)} is not followed by /REPOSITORY", None
        if _TAG_RE.fullmatch(tag) is None:
            return f"invalid tag {_show(tag)}: {_tag_problem(tag)}", None
        name = head
    if not name:
        return "the repository name is missing", None
    parts = name.split("/")
    if len(parts) > 1 and _DOMAIN_RE.fullmatch(parts[0]):
        if all(_PATH_COMPONENT_RE.fullmatch(part) for part in parts[1:]):
            # Only Reference.parse gets here: the first component was not taken as a registry.
            return (
                f"{_show(parts[0])} is not a path component, and a registry host needs a '.' or a ':' "
                "or to be 'localhost'",
                None,
            )
        parts = parts[1:]
    elif len(parts) > 1 and any(c in parts[0] for c in ".:[]") and not _PATH_COMPONENT_RE.fullmatch(parts[0]):
        if parts[0].count(":") > 1 and not parts[0].startswith("["):
            return f"invalid registry {_show(parts[0])}: an IPv6 address must be in brackets", None
        return f"invalid registry {_show(parts[0])}", None
    for part in parts:
        if not part:
            return "empty path component (a doubled, leading or trailing '/')", None
        if _PATH_COMPONENT_RE.fullmatch(part) is None:
            if _PATH_COMPONENT_RE.fullmatch(part.lower()):
                return "repository name must be lowercase", None
            return (
                f"invalid path component {_show(part)}: lower-case letters and digits, "
                "separated by one '.', one or two '_', or '-'",
                None,
            )
    return "invalid reference format", None


def _split(text: str, shown: str) -> tuple[str, str, str | None, str | None]:
    """``Parse``: match the grammar and split into (domain, path, tag, digest); errors name ``shown``."""
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        if not text:
            raise _ReferenceError(shown, "ErrNameEmpty", "the reference is empty")
        if _REFERENCE_RE.fullmatch(_go_lower(text)):
            raise _ReferenceError(shown, "ErrNameContainsUppercase", "repository name must be lowercase")
        reason, hint = _explain_format(shown)
        raise _ReferenceError(shown, "ErrReferenceInvalidFormat", reason, hint=hint)
    name, tag, digest = match.groups()
    name_match = _ANCHORED_NAME_RE.fullmatch(name)
    if name_match is None:  # pragma: no cover - the reference pattern contains the name pattern
        raise _ReferenceError(shown, "ErrReferenceInvalidFormat", "invalid repository name")
    domain, path = name_match.group(1) or "", name_match.group(2)
    if len(path) > _NAME_MAX:
        reason = f"the repository path has {len(path)} characters, at most {_NAME_MAX} are allowed"
        raise _ReferenceError(shown, "ErrNameTooLong", reason)
    if digest is not None:
        problem = _digest_problem(digest)
        if problem is not None:
            raise _ReferenceError(shown, *problem)
    return domain, path, tag, digest


def _names_a_registry(first: str) -> bool:
    """``splitDockerDomain``: whether the first component of a name is a registry host."""
    return first == "localhost" or "." in first or ":" in first or _go_lower(first) != first


def _split_docker_domain(text: str) -> tuple[str, str]:
    """distribution/reference ``splitDockerDomain``: guess the registry of a familiar name."""
    first, slash, rest = text.partition("/")
    if not slash:
        return DOCKER_HUB, _OFFICIAL_PREFIX + text
    if first == _LEGACY_DOCKER_HUB:
        domain, remainder = DOCKER_HUB, rest
    elif _names_a_registry(first):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_HUB, text
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


@dataclass(frozen=True, slots=True)
class Reference:
    """An image in a registry: ``registry/repository[:tag][@digest]``.

    Build one with :meth:`parse` from user input. The constructor only validates (it does not
    normalize): pass ``docker.io`` and ``library/ubuntu``, not ``ubuntu``. ``registry`` is empty only
    for the rare names upstream leaves without a domain (``foo_bar.com/baz``: an invalid host).
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    scheme: ClassVar[str] = "registry"

    def __post_init__(self) -> None:
        if self.registry and _DOMAIN_RE.fullmatch(self.registry) is None:
            raise InvalidReference(f"invalid registry {_show(self.registry)}")
        if _REMOTE_NAME_RE.fullmatch(self.repository) is None:
            raise InvalidReference(
                f"invalid repository {_show(self.repository)}: lower-case path components separated by '/'"
            )
        if len(self.repository) > _NAME_MAX:
            raise InvalidReference(
                f"invalid repository {_show(self.repository)}: longer than {_NAME_MAX} characters"
            )
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse like ``ParseNormalizedNamed``: ``ubuntu:22.04`` is ``docker.io/library/ubuntu:22.04``.

        Raises :class:`InvalidReference` with a one-line message saying what is wrong.
        """
        if _IDENTIFIER_RE.fullmatch(text):
            reason = "a 64-character hexadecimal string is an image ID, not a repository name"
            raise _ReferenceError(text, "fmt:NameIsIdentifier", reason)
        domain, remainder = _split_docker_domain(text)
        remote = remainder.partition(":")[0]
        if _go_lower(remote) != remote:
            name, at, algorithm = remote.partition("@")
            if at and _go_lower(name) == name:  # upstream checks up to the first ':', digest included
                reason = f"digest algorithm {_show(algorithm)} must be lowercase"
            else:
                reason = f"repository name {_show(name)} must be lowercase"
            raise _ReferenceError(text, "fmt:RemoteNameNotLowercase", reason)
        return cls(*_split(f"{domain}/{remainder}", text))

    @property
    def domain(self) -> str:
        """Alias of :attr:`registry` (the upstream name)."""
        return self.registry

    @property
    def path(self) -> str:
        """Alias of :attr:`repository` (the upstream name)."""
        return self.repository

    @property
    def name(self) -> str:
        """``registry/repository``, e.g. ``docker.io/library/ubuntu``."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)

    @property
    def familiar_name(self) -> str:
        """The name as docker prints it: ``ubuntu`` for ``docker.io/library/ubuntu``."""
        if self.registry != DOCKER_HUB:
            return self.name
        remainder = self.repository.removeprefix(_OFFICIAL_PREFIX)
        return self.repository if "/" in remainder else remainder

    @property
    def familiar(self) -> str:
        """The reference as docker prints it: ``ubuntu:22.04``."""
        return self.familiar_name + _suffix(self.tag, self.digest)

    @property
    def endpoint(self) -> str:
        """The host (and port) to connect to: ``registry-1.docker.io`` for Docker Hub."""
        if not self.registry:
            raise InvalidReference(f"reference {_show(str(self))} names no registry host")
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    @property
    def identifier(self) -> str | None:
        """What goes in ``/manifests/<identifier>``: the digest if set, else the tag."""
        return self.digest if self.digest is not None else self.tag

    @property
    def insecure_default(self) -> bool:
        """True when plain HTTP is allowed without opt-in, like docker: localhost, 127.0.0.0/8, ::1."""
        return is_loopback(self.registry)

    def scope(self, *actions: str) -> str:
        """The token scope for this repository: ``repository:library/ubuntu:pull,push`` (default pull)."""
        wanted = ",".join(dict.fromkeys(actions or ("pull",)))
        return f"repository:{self.repository}:{wanted}"

    def with_tag(self, tag: str) -> Self:
        """This repository with ``tag`` and no digest."""
        return replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> Self:
        """This repository with ``digest`` and no tag."""
        return replace(self, tag=None, digest=validate_digest(digest))

    def repo(self) -> Self:
        """This repository without tag or digest."""
        return replace(self, tag=None, digest=None)


def parse_raw(text: str) -> Reference:
    """Parse like upstream ``Parse``: the grammar alone, no Docker Hub normalization.

    ``ubuntu`` has no registry here and ``library/ubuntu`` has registry ``library``; user input
    belongs in :meth:`Reference.parse`.
    """
    return Reference(*_split(text, text))


def _suffix(tag: str | None, digest: str | None) -> str:
    return (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")


def is_loopback(registry: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1`` (with or without a port): docker's plain-HTTP hosts."""
    host = _host(registry).lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _host(registry: str) -> str:
    """The host part of ``registry`` (brackets of an IPv6 literal removed, port dropped)."""
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    return registry.partition(":")[0]


# --- registry hosts and image names ------------------------------------------------------------------


def is_registry_host(text: str) -> bool:
    """Whether ``text`` is a registry host as references spell it: a DNS name, ``localhost`` or a
    bracketed IPv6 address, with an optional ``:port`` (``registry.example.com:5000``, ``[::1]:5000``)."""
    return _DOMAIN_RE.fullmatch(text) is not None


def canonical_registry(host: str) -> str:
    """The name credentials and logins are keyed by: the host lower-cased (DNS names ignore case)
    and every Docker Hub alias (:data:`DOCKER_HUB_ALIASES`) as ``docker.io``."""
    lowered = host.lower()
    return DOCKER_HUB if lowered in DOCKER_HUB_ALIASES else lowered


def image_registry(name: str) -> str:
    """The canonical registry (:func:`canonical_registry`) of an image name: ``docker.io`` for
    ``ubuntu`` or ``registry-1.docker.io/acme/app``, ``registry.example.com:443`` for
    ``Registry.Example.com:443/a/b``. The name is split as :meth:`Reference.parse` splits it, not
    validated."""
    return canonical_registry(_split_docker_domain(name)[0])


def parse_image_name(name: str) -> Reference:
    """Parse a repository name as written in a config (``ghcr.io/org/app``, ``acme/app``,
    ``ubuntu``): the :meth:`Reference.parse` grammar and Docker Hub normalisation, without a tag or
    digest.

    Raises :class:`InvalidReference` with one line naming the image and its faulty part (the
    registry host, a path component, a tag or digest, the length).
    """
    shown = _show(name)
    if len(name) > _NAME_MAX:
        raise InvalidReference(f"image name {shown} is longer than {_NAME_MAX} characters")
    first, slash, rest = name.partition("/")
    written_host = bool(slash) and _names_a_registry(first)
    if written_host and not is_registry_host(first):
        raise InvalidReference(f"image name {shown}: invalid registry host {_show(first)}")
    path = rest if written_host else name
    if "@" in path or ":" in path.rpartition("/")[2]:
        raise InvalidReference(f"image name {shown}: give the repository without a tag or digest")
    for component in path.split("/"):
        if _PATH_COMPONENT_RE.fullmatch(component) is None:
            raise InvalidReference(
                f"image name {shown}: invalid path component {_show(component)} "
                "(lowercase letters, digits and single . _ __ or - separators)"
            )
    return Reference.parse(name)


# --- OCI image layout references ----------------------------------------------------------------------


def _looks_like_digest(text: str) -> bool:
    """Whether the text after an '@' in a layout reference is meant as a digest."""
    algorithm, colon, encoded = text.partition(":")
    if not colon or "/" in text:
        return False
    return algorithm.lower() in _ALGORITHMS or _ANY_HEX_RE.fullmatch(encoded) is not None


@dataclass(frozen=True, slots=True)
class LayoutReference:
    """An image in an OCI image layout directory: ``oci:PATH[:TAG][@DIGEST]`` as skopeo writes them.

    ``path`` is the directory as given. A path ending in ``:<tag>`` cannot be told apart from a tag,
    so the text after the last ``:`` is the tag whenever it is a valid tag without ``/``.
    """

    path: str
    tag: str | None = None
    digest: str | None = None
    scheme: ClassVar[str] = "oci"

    def __post_init__(self) -> None:
        if not self.path:
            raise InvalidReference("invalid OCI layout reference: the directory path is empty")
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``oci:PATH``, ``oci:PATH:TAG``, ``oci:PATH@DIGEST`` (or both); raises InvalidReference."""
        if not text.startswith(_LAYOUT_SCHEME):
            raise InvalidReference(f"invalid OCI layout reference {_show(text)}: it must start with 'oci:'")
        rest = text.removeprefix(_LAYOUT_SCHEME)
        digest: str | None = None
        tag: str | None = None
        head, at, tail = rest.rpartition("@")
        if at and _looks_like_digest(tail):
            problem = _digest_problem(tail)
            if problem is not None:
                raise InvalidReference(f"invalid OCI layout reference {_show(text)}: {problem[1]}")
            rest, digest = head, tail
        head, colon, tail = rest.rpartition(":")
        if colon and not tail:
            raise InvalidReference(f"invalid OCI layout reference {_show(text)}: empty tag after ':'")
        if colon and "/" not in tail and _TAG_RE.fullmatch(tail):
            rest, tag = head, tail
        if not rest:
            raise InvalidReference(f"invalid OCI layout reference {_show(text)}: the directory path is empty")
        return cls(rest, tag, digest)

    @property
    def name(self) -> str:
        """``oci:PATH``."""
        return _LAYOUT_SCHEME + self.path

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)

    @property
    def familiar(self) -> str:
        """Same as ``str(ref)``; there is no shorter form."""
        return str(self)

    @property
    def identifier(self) -> str | None:
        """The digest if set, else the tag."""
        return self.digest if self.digest is not None else self.tag

    def with_tag(self, tag: str) -> Self:
        """This layout with ``tag`` and no digest."""
        return replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> Self:
        """This layout with ``digest`` and no tag."""
        return replace(self, tag=None, digest=validate_digest(digest))

    def repo(self) -> Self:
        """This layout without tag or digest."""
        return replace(self, tag=None, digest=None)


AnyReference: TypeAlias = Reference | LayoutReference


def parse_reference(text: str) -> AnyReference:
    """``oci:...`` is a :class:`LayoutReference`; anything else goes to :meth:`Reference.parse`."""
    if text.startswith(_LAYOUT_SCHEME):
        return LayoutReference.parse(text)
    return Reference.parse(text)
