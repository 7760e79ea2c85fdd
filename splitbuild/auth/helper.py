"""The docker credential-helper protocol: ``docker-credential-NAME get``.

The helper is found on ``PATH``, gets the server URL on stdin (no trailing newline) and prints
``{"ServerURL": ..., "Username": ..., "Secret": ...}``. A non-zero exit whose output says
``credentials not found`` means "nothing stored", not an error; any other failure is reported with
the first line of the helper's error message (stdout, as the protocol has it, else stderr),
scrubbed; a stdout that is JSON (it may carry the secret) is never shown. ``Username == "<token>"`` means
the secret is an identity token (OAuth2 refresh token), not a password.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping

from splitbuild.auth.credentials import Credential
from splitbuild.errors import ConfigError
from splitbuild.scrub import register_credential

__all__ = ["DEFAULT_HELPER_TIMEOUT", "HELPER_PREFIX", "TOKEN_USERNAME", "helper_get"]

HELPER_PREFIX = "docker-credential-"
TOKEN_USERNAME = "<token>"
DEFAULT_HELPER_TIMEOUT = 20.0
_NOT_FOUND = "credentials not found"


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _register_printed_secrets(output: str) -> bool:
    """Register the secret a failing helper printed anyway; whether its stdout looks like JSON."""
    if output.lstrip()[:1] not in ("{", "["):
        return False
    try:
        answer = json.loads(output)
    except ValueError:
        return True
    if isinstance(answer, dict):
        username, secret = answer.get("Username"), answer.get("Secret")
        register_credential(
            username if isinstance(username, str) else None, secret if isinstance(secret, str) else None
        )
    return True


def helper_get(
    name: str,
    server_url: str,
    *,
    configured_in: str,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_HELPER_TIMEOUT,
) -> Credential | None:
    """Ask ``docker-credential-<name>`` for ``server_url``; ``None`` when it has nothing stored.

    ``configured_in`` names where the helper was configured (for messages). ``env`` is the
    environment the helper runs with (and whose ``PATH`` finds it); the process's by default.
    """
    program = HELPER_PREFIX + name
    executable = shutil.which(program, path=None if env is None else env.get("PATH", ""))
    if executable is None:
        raise ConfigError(
            f"credential helper {program} (from {configured_in}) is not on PATH",
            hint=f"install {program}, or remove it from {configured_in}",
        )
    try:
        proc = subprocess.run(
            [executable, "get"],
            input=server_url.encode(),
            capture_output=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"credential helper {program} did not answer for {server_url} within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise ConfigError(f"credential helper {program} could not be run: {exc.strerror}") from None
    output = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        if _NOT_FOUND in output.lower():
            return None
        # Helpers report errors on stdout (the protocol), but a stdout that is JSON may hold the
        # secret (printed before failing): that is never shown, and its secrets are masked in
        # whatever is (splitbuild.scrub).
        printed_json = _register_printed_secrets(output)
        errors = proc.stderr.decode("utf-8", errors="replace")
        detail = _first_line(errors) if printed_json else _first_line(output) or _first_line(errors)
        raise ConfigError(
            f"credential helper {program} failed for {server_url} (exit {proc.returncode})"
            + (f": {detail}" if detail else "")
        )
    try:
        answer = json.loads(output)
    except json.JSONDecodeError:
        raise ConfigError(f"credential helper {program} printed invalid JSON for {server_url}") from None
    if not isinstance(answer, dict):
        raise ConfigError(f"credential helper {program} printed invalid JSON for {server_url}")
    username = answer.get("Username") or ""
    secret = answer.get("Secret") or ""
    if not isinstance(username, str) or not isinstance(secret, str):
        raise ConfigError(f"credential helper {program} printed invalid JSON for {server_url}")
    source = f"{program} (from {configured_in})"
    if username == TOKEN_USERNAME:
        return Credential(identity_token=secret or None, source=source) if secret else None
    if not username and not secret:
        return None
    return Credential(username=username or None, password=secret or None, source=source)
