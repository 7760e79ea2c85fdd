"""Errors raised by splitbuild, and the exit code the CLI maps each to.

Every error the library raises on purpose derives from :class:`SplitbuildError`; anything else
escaping is a bug. The tree::

    SplitbuildError                       exit 1
    ├── UsageError                        exit 2   bad combination of options
    ├── InvalidInput                      exit 3   malformed reference, digest, manifest, config, rule
    │   ├── InvalidReference (ValueError)
    │   ├── InvalidDigest (ValueError)
    │   ├── InvalidManifest
    │   └── ConfigError
    ├── NotFound                          exit 4   manifest, blob or tag that does not exist
    ├── RegistryError                     exit 5   the registry or the network failed (after retries)
    │   └── AuthError                     exit 6   credentials refused, scope denied
    ├── VerificationError                 exit 7   digest mismatch, platform set mismatch
    │   └── DigestMismatch
    ├── Refused                           exit 8   a safety check refused (shrink, delete of a tagged digest)
    ├── BuildError                        exit 9   a local build failed
    └── OutOfDate                         exit 10  a generated file is out of date (generate --check)

Messages are one line, name the object at fault, and never contain a credential: the message and
the hint pass through :func:`splitbuild.scrub.scrub` whenever they are set, so text a registry, token
service or credential helper put in them loses every registered secret and every control character.

A message or hint names a parameter of the call in backticks (```keep_last` must be 0 or more``),
never a command-line option: the CLI shows the option that sets it instead (``--keep-last must be 0
or more``), with :func:`spell_parameters`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from splitbuild.scrub import scrub

__all__ = [
    "AuthError",
    "BuildError",
    "ConfigError",
    "DigestMismatch",
    "ErrorDetail",
    "InvalidDigest",
    "InvalidInput",
    "InvalidManifest",
    "InvalidReference",
    "NotFound",
    "OutOfDate",
    "Refused",
    "RegistryError",
    "SplitbuildError",
    "UsageError",
    "VerificationError",
    "shorten",
    "spell_parameters",
]

MAX_SHOWN = 160
"""Characters of user input a message shows at most (see :func:`shorten`)."""


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` as a message shows it: whole when short, else its start and end around ``...``
    (``limit`` characters in all), so that a 100,000-character path or option stays one line."""
    if len(text) <= limit:
        return text
    keep = limit - 3
    return text[: keep - keep // 3] + "..." + text[len(text) - keep // 3 :]


_PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)`")


def spell_parameters(text: str, spell: Callable[[str], str | None]) -> str:
    """``text`` with each parameter it names in backticks replaced by ``spell(name)`` (the CLI's
    option for it); a name ``spell`` does not know (None) keeps its backticks."""
    return _PARAMETER.sub(lambda match: spell(match.group(1)) or match.group(0), text)


class SplitbuildError(Exception):
    """Base class. ``hint`` is an optional second line suggesting what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(scrub(message))
        self.message = message
        self.hint = hint

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        self._message = scrub(value)
        self.args = (self._message,)

    @property
    def hint(self) -> str | None:
        return self._hint

    @hint.setter
    def hint(self, value: str | None) -> None:
        self._hint = None if value is None else scrub(value)

    def __str__(self) -> str:
        return self.message


class UsageError(SplitbuildError):
    """A call or command line of the wrong shape: a missing argument, conflicting options."""

    exit_code = 2


class InvalidInput(SplitbuildError):
    """A value that cannot be used: a malformed reference, digest, manifest, config, rule or platform."""

    exit_code = 3


class InvalidReference(InvalidInput, ValueError):
    """An image reference that does not follow the distribution/reference grammar."""


class InvalidDigest(InvalidInput, ValueError):
    """A digest that is not ``algorithm:hex`` with a registered algorithm and the right length."""


class InvalidManifest(InvalidInput):
    """Manifest bytes that are not a valid OCI/Docker manifest or index."""


class ConfigError(InvalidInput):
    """A config file, context file or option value that cannot be used."""


class NotFound(SplitbuildError):
    """A manifest, blob, tag or file that does not exist."""

    exit_code = 4


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the registry's ``errors`` list (distribution-spec error codes)."""

    code: str
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", scrub(self.code))
        object.__setattr__(self, "message", scrub(self.message))


class RegistryError(SplitbuildError):
    """A request failed. ``url`` is redacted (no query string with tokens, no userinfo)."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        details: Sequence[ErrorDetail] = (),
        retryable: bool = False,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.url = url
        self.details = tuple(details)
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts: int | None = None
        """Attempts made before giving up, when :class:`splitbuild.retry.RetryPolicy` gave up."""

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(d.code for d in self.details)


class AuthError(RegistryError):
    """Credentials refused or access denied by a registry or its token service."""

    exit_code = 6


class VerificationError(SplitbuildError):
    """What was read is not what was asked for: a digest or platform set that does not match."""

    exit_code = 7


class DigestMismatch(VerificationError):
    """Bytes whose digest (or size) differs from the one expected."""


class Refused(SplitbuildError):
    """A safety check refused to go on: a tag would lose platforms, a digest still in use, another writer
    moved a tag."""

    exit_code = 8


class OutOfDate(SplitbuildError):
    """A generated file differs from what its config generates now (``generate --check``)."""

    exit_code = 10


class BuildError(SplitbuildError):
    exit_code = 9
