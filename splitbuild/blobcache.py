"""Where blobs live: a small persistent record, per registry, of the repositories known to hold each
blob digest, so that a copy into a registry can mount a blob from a repository there instead of
streaming it again (as skopeo's blob-info cache does).

It is learnt from every blob a transfer sees (pushed, mounted, found already there, or read from a
source repository) and kept in an SQLite file in the user's cache directory, safe for concurrent
processes (WAL journal, short transactions, a busy timeout). It holds registry host names,
repository names and digests: never a credential. It only suggests: a mount is an ordinary request
that the registry authorises with the caller's own token (pull on the repository mounted from), and
a refused or failed mount falls back to streaming and forgets the entry.

The cache is an optimisation: a file that cannot be opened, written or read turns it off for the
run, silently (``-v`` logs why); ``SPLITBUILD_BLOB_CACHE=0`` turns it off, ``SPLITBUILD_CACHE_DIR``
moves it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "CACHE_ENV", "BlobLocations", "default_cache_dir"]

CACHE_ENV = "SPLITBUILD_BLOB_CACHE"
CACHE_DIR_ENV = "SPLITBUILD_CACHE_DIR"
FILE_NAME = "blob-locations.sqlite3"
MAX_AGE = 30 * 24 * 3600.0
"""Entries not seen for this long are dropped when the cache is opened."""
MAX_ROWS = 500_000
"""Beyond this many entries the oldest are dropped when the cache is opened."""

_log = logging.getLogger("splitbuild.blobcache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    registry TEXT NOT NULL,
    digest TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (registry, digest, repository)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_seen ON blobs (seen);
"""


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$SPLITBUILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/splitbuild``, else ``~/.cache/splitbuild``."""
    env = os.environ if env is None else env
    if env.get(CACHE_DIR_ENV):
        return Path(env[CACHE_DIR_ENV])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "splitbuild"


class BlobLocations:
    """The record of which repositories of a registry hold which blobs. Use :meth:`open`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db: sqlite3.Connection | None = connection

    @classmethod
    def open(
        cls, directory: Path | None = None, env: Mapping[str, str] | None = None
    ) -> BlobLocations | None:
        """The cache in ``directory`` (default: :func:`default_cache_dir`), or None when it is turned
        off or cannot be used."""
        env = os.environ if env is None else env
        if env.get(CACHE_ENV, "1").strip().lower() in ("0", "off", "false", "no"):
            return None
        directory = directory or default_cache_dir(env)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = directory / FILE_NAME
            connection = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            _expire(connection)
        except (OSError, sqlite3.Error) as exc:
            _log.debug("blob location cache off: %s", exc)
            return None
        return cls(connection)

    def remember(self, registry: str, repository: str, digests: Iterable[str]) -> None:
        """``repository`` of ``registry`` holds these blobs (seen now)."""
        now = time.time()
        rows = [(registry, digest, repository, now) for digest in dict.fromkeys(digests)]
        if rows:
            self._run(
                "INSERT INTO blobs (registry, digest, repository, seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (registry, digest, repository) DO UPDATE SET seen = excluded.seen",
                rows,
            )

    def holders(self, registry: str, digest: str, *, exclude: str = "", limit: int = 3) -> list[str]:
        """Repositories of ``registry`` known to hold ``digest``, most recently seen first, without
        ``exclude``."""
        db = self._db
        if db is None:
            return []
        try:
            rows = db.execute(
                "SELECT repository FROM blobs WHERE registry = ? AND digest = ? AND repository != ? "
                "ORDER BY seen DESC LIMIT ?",
                (registry, digest, exclude, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            self._off(exc)
            return []
        return [str(row[0]) for row in rows]

    def forget(self, registry: str, repository: str, digest: str) -> None:
        """``repository`` turned out not to hold ``digest`` (or refused to share it)."""
        self._run(
            "DELETE FROM blobs WHERE registry = ? AND digest = ? AND repository = ?",
            [(registry, digest, repository)],
        )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _run(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        db = self._db
        if db is None:
            return
        try:
            with db:  # one short transaction
                db.execute("BEGIN")
                db.executemany(sql, rows)
        except sqlite3.Error as exc:
            self._off(exc)

    def _off(self, exc: sqlite3.Error) -> None:
        _log.debug("blob location cache off for this run: %s", exc)
        self.close()


def _expire(connection: sqlite3.Connection) -> None:
    with connection:
        connection.execute("BEGIN")
        connection.execute("DELETE FROM blobs WHERE seen < ?", (time.time() - MAX_AGE,))
        (count,) = connection.execute("SELECT count(*) FROM blobs").fetchone()
        if count > MAX_ROWS:
            connection.execute(
                "DELETE FROM blobs WHERE seen <= "
                "(SELECT seen FROM blobs ORDER BY seen DESC LIMIT 1 OFFSET ?)",
                (MAX_ROWS,),
            )
