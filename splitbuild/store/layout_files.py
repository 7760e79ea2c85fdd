"""Files inside an OCI image layout, opened without ever following a link out of it.

The layout directory itself is the user's choice (it may be reached through a symbolic link);
below it, every path component is opened relative to its parent directory with ``O_NOFOLLOW``, so
a symbolic link inside the layout (a blob, ``blobs/sha256``, ``index.json``, the lock file) is
refused and nothing is ever read from or written to a place outside the layout. Only regular
files are read: a FIFO, a device or a directory where a file should be is refused before any byte
is read (a FIFO is opened non-blocking, so opening it cannot hang). Sizes are checked from
``fstat`` before reading and again while reading (a file that grows is still cut off).

Every refusal is :class:`~splitbuild.errors.InvalidInput` (exit 3); a missing file is
``FileNotFoundError`` for the caller to turn into :class:`~splitbuild.errors.NotFound`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from splitbuild.errors import InvalidInput

__all__ = ["LayoutFiles"]

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024


def _split(rel: str) -> tuple[list[str], str]:
    parts = rel.split("/")
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a plain relative path: {rel!r}")  # pragma: no cover - callers build them
    return parts[:-1], parts[-1]


class LayoutFiles:
    """Reads and writes below ``root`` without following symbolic links (see the module docstring).

    ``name`` (``oci:PATH``) starts every error message. Paths are ``/``-separated, relative to the
    root, without ``.`` or ``..``.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name

    # -- errors --------------------------------------------------------------------------------

    def _refusal(self, rel: str, exc: OSError) -> InvalidInput | None:
        """The refusal an OSError from opening ``rel`` stands for (None: let it propagate)."""
        if exc.errno == errno.ELOOP:
            return InvalidInput(
                f"{self.name}: {rel} (or a directory above it) is a symbolic link: refused "
                "(files inside a layout are never reached through links)"
            )
        if exc.errno == errno.ENOTDIR:
            return InvalidInput(f"{self.name}: {rel}: a path component is not a directory")
        if exc.errno == errno.EISDIR:
            return InvalidInput(f"{self.name}: {rel} is a directory, not a regular file")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENXIO, errno.EINVAL, errno.ENAMETOOLONG):
            return InvalidInput(f"{self.name}: {rel}: cannot be opened ({os.strerror(exc.errno)})")
        return None

    def _not_regular(self, rel: str, mode: int) -> InvalidInput:
        kind = (
            "a directory"
            if stat.S_ISDIR(mode)
            else "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a symbolic link"
            if stat.S_ISLNK(mode)
            else "not a regular file"
        )
        return InvalidInput(f"{self.name}: {rel} is {kind}, not a regular file: refused")

    # -- directories ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def directory(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory ``root/parts...`` (created with ``create``), each component
        opened without following links."""
        where = "/".join(parts) or "."
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise self._refusal("the layout directory", exc) or exc from None
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    child = self._open_dir(part, fd, where)
                except OSError as exc:
                    raise self._dir_refusal(part, fd, where, exc) or exc from None
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_dir(self, part: str, parent: int, where: str) -> int:
        try:
            return os.open(part, _DIR, dir_fd=parent)
        except OSError as exc:
            raise self._dir_refusal(part, parent, where, exc) or exc from None

    def _dir_refusal(self, part: str, parent: int, where: str, exc: OSError) -> InvalidInput | None:
        if exc.errno == errno.ENOTDIR:  # O_DIRECTORY is checked before O_NOFOLLOW: a link is ENOTDIR
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(part, dir_fd=parent, follow_symlinks=False).st_mode):
                    return self._refusal(where, OSError(errno.ELOOP, os.strerror(errno.ELOOP)))
        return self._refusal(where, exc)

    # -- reading -------------------------------------------------------------------------------

    def kind(self, rel: str) -> str | None:
        """``"file"`` for a regular file, None when absent; anything else (a link, a FIFO, a
        directory) is refused."""
        parents, leaf = _split(rel)
        try:
            with self.directory(parents) as fd:
                st = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise self._not_regular(rel, st.st_mode)
        return "file"

    def exists(self, rel: str) -> bool:
        return self.kind(rel) is not None

    @contextlib.contextmanager
    def open_read(self, rel: str) -> Iterator[tuple[BinaryIO, int]]:
        """``(file, size)`` for the regular file ``rel``; FileNotFoundError when absent."""
        parents, leaf = _split(rel)
        with self.directory(parents) as dir_fd:
            try:
                fd = os.open(leaf, _READ, dir_fd=dir_fd)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                raise self._refusal(rel, exc) or exc from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise self._not_regular(rel, st.st_mode)
            os.set_blocking(fd, True)
            handle = os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise
        with handle:
            yield handle, st.st_size

    def read(self, rel: str, limit: int, *, too_big: str | None = None) -> bytes:
        """The whole regular file ``rel``, refused (InvalidInput, ``too_big`` or a default message)
        when it is or grows over ``limit`` bytes; never reads more than ``limit + 1`` bytes."""
        with self.open_read(rel) as (handle, size):
            message = too_big or f"{self.name}: {rel} is over the {limit}-byte limit"
            if size > limit:
                raise InvalidInput(message)
            return read_at_most(handle, limit, message)

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def new_file(self, rel: str) -> Iterator[tuple[BinaryIO, Callable[..., None]]]:
        """A new temporary file beside ``rel`` (its directories created), open for writing, and a
        function that moves it to ``rel``: ``commit()`` replaces ``rel``, ``commit(replace=False)``
        keeps an existing ``rel`` (a concurrent writer's). Removed on the way out if not moved."""
        parents, leaf = _split(rel)
        with self.directory(parents, create=True) as dir_fd:
            tmp = f".tmp-{secrets.token_hex(8)}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)

            def commit(*, replace: bool = True) -> None:
                if replace:
                    os.replace(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                    return
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                os.unlink(tmp, dir_fd=dir_fd)

            try:
                with os.fdopen(fd, "wb") as handle:
                    yield handle, commit
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dir_fd)

    def write(self, rel: str, data: bytes, *, replace: bool = True) -> None:
        """Write ``rel`` whole and atomically (temporary file, then rename or link)."""
        with self.new_file(rel) as (handle, commit):
            handle.write(data)
            handle.flush()
            commit(replace=replace)

    def unlink(self, rel: str) -> None:
        parents, leaf = _split(rel)
        with self.directory(parents) as dir_fd:
            os.unlink(leaf, dir_fd=dir_fd)

    @contextlib.contextmanager
    def locked(self, rel: str) -> Iterator[None]:
        """Hold an exclusive ``flock`` on the regular file ``rel`` (created if absent)."""
        parents, leaf = _split(rel)
        with self.directory(parents, create=True) as dir_fd:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(leaf, flags, 0o644, dir_fd=dir_fd)
            except OSError as exc:
                raise self._refusal(rel, exc) or exc from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise self._not_regular(rel, st.st_mode)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def read_at_most(handle: BinaryIO, limit: int, message: str) -> bytes:
    """Everything ``handle`` holds, raising InvalidInput(``message``) past ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    while chunk := handle.read(min(_CHUNK, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise InvalidInput(message)
    return b"".join(chunks)
