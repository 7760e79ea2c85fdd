"""The one scrubber for text that comes from outside: registries, token services, credential helpers.

Every credential splitbuild holds during a run is registered here when it is created (a
:class:`~splitbuild.auth.credentials.Credential`, a token from a token service): the raw secret,
``user:password``, its base64 form (what a ``Basic`` header carries) and its URL-encoded form.
:func:`scrub` replaces each of them with ``***`` and renders control, line-break and
bidirectional characters as visible escapes (``\\x1b``, ``\\n``, ``\\u202e``), so a registry's text
can neither show a secret nor move the cursor, recolour the terminal or forge an output line.

Errors scrub their message and hint when made (:class:`splitbuild.errors.SplitbuildError`), the
registry's error details are scrubbed when read, and the CLI scrubs what it prints on stderr and in
JSON once more.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote

__all__ = ["MASK", "forget_secrets", "register_credential", "register_secret", "scrub", "scrub_secrets"]

MASK = "***"
MIN_SECRET = 6
"""Shorter strings are not registered: masking every ``abc`` would garble messages, not protect.
A secret shorter than ``ANYWHERE`` is masked where it stands alone, not inside a longer word
(``passwd`` in ``passwdfile``); a longer one (tokens, base64 forms) wherever it appears."""
ANYWHERE = 12
MAX_SECRETS = 4096
"""The registry keeps the newest forms (tokens are renewed during long runs)."""

_lock = threading.Lock()
_secrets: dict[str, None] = {}
_pattern: re.Pattern[str] | None = None

# C0 and C1 controls, DEL, Unicode line and paragraph separators, bidirectional controls.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _forms(secret: str) -> list[str]:
    forms = [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode("ascii")]
    return [f for f in forms if len(f) >= MIN_SECRET]


def register_secret(*values: str | None) -> None:
    """Mask ``values`` (and their encoded forms) in every text scrubbed from now on."""
    global _pattern
    added = [form for value in values if value and len(value) >= MIN_SECRET for form in _forms(value)]
    if not added:
        return
    with _lock:
        for form in added:
            _secrets.pop(form, None)
            _secrets[form] = None
        while len(_secrets) > MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        _pattern = None


def forget_secrets() -> None:
    """Drop every registered secret (between independent runs in one process, e.g. tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def register_credential(username: str | None, password: str | None) -> None:
    """A password, and ``username:password`` in the forms a ``Basic`` header or a URL carries."""
    register_secret(password)
    if username and password:
        register_secret(f"{username}:{password}")


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _secrets:
            ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial masks
            anywhere = "|".join(re.escape(s) for s in ordered if len(s) >= ANYWHERE)
            alone = "|".join(re.escape(s) for s in ordered if len(s) < ANYWHERE)
            parts = [f"(?:{anywhere})"] if anywhere else []
            parts += [f"(?<![A-Za-z0-9])(?:{alone})(?![A-Za-z0-9])"] if alone else []
            _pattern = re.compile("|".join(parts))
        return _pattern


def scrub_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (control characters kept)."""
    pattern = _compiled()
    return pattern.sub(MASK, text) if pattern is not None else text


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def scrub(text: str) -> str:
    """``text`` safe to print or put in JSON: no registered secret, no control or bidi character."""
    return _UNSAFE.sub(_escape, scrub_secrets(text))
