"""Reading the small local files splitbuild takes as input: the config, a tag context, the CI
event payload.

Only a regular file is read (checked before it is opened, so a FIFO, a device such as
``/dev/zero`` or a directory is refused without blocking on it or reading it), and at most
``limit`` bytes of it: the size is checked before reading and again while reading, since a file
can grow, and ``/proc`` files report no size. Every failure is one line naming the file, as a
:class:`~splitbuild.errors.ConfigError` (exit 3).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from splitbuild.errors import ConfigError
from splitbuild.textline import shown

__all__ = ["display", "read_text_file"]

_CHUNK = 1 << 16
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _size(limit: int) -> str:
    return f"{limit // (1 << 20)} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def display(path: str | Path) -> str:
    """``path`` for a one-line message (line breaks and control characters escaped)."""
    return shown(str(path))


def read_text_file(
    path: str | Path,
    *,
    limit: int,
    label: str | None = None,
    missing: str = "not found",
    missing_hint: str | None = None,
) -> str:
    """The UTF-8 text of the regular file at ``path``, at most ``limit`` bytes. Errors start with
    ``label`` (default: the path); a missing file is ``"LABEL: MISSING"`` with ``missing_hint``."""
    where = label if label is not None else display(path)
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing}", hint=missing_hint) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(before.st_mode):
        raise ConfigError(f"{where}: {_kind(before.st_mode)}, not a regular file")
    if before.st_size > limit:
        raise ConfigError(f"{where}: larger than {_size(limit)} ({before.st_size} bytes)")
    data = _read_bounded(path, limit, where, missing)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None


def _read_bounded(path: str | Path, limit: int, where: str, missing: str) -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced between the check and the open
            raise ConfigError(f"{where}: {_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ConfigError(f"{where}: larger than {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
