"""The default TLS trust, optionally built on a thread started early.

Loading the CA bundle (certifi's, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, as httpx does by default)
parses a few hundred certificates: tens of milliseconds of a command's start-up. OpenSSL does it
without the GIL, so :func:`prepare` lets it run beside the imports of the command line, and
:func:`default_context` takes the result (or builds it there and then when nothing was prepared).
"""

from __future__ import annotations

import os
import ssl
import threading

__all__ = ["default_context", "prepare"]

_lock = threading.Lock()
_thread: threading.Thread | None = None
_context: ssl.SSLContext | None = None
_error: BaseException | None = None


def _build() -> ssl.SSLContext:
    """What httpx builds for ``verify=True``."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _run() -> None:
    global _context, _error
    try:
        _context = _build()
    except BaseException as exc:  # re-raised by default_context(), in the caller's thread
        _error = exc


def prepare() -> None:
    """Start building the default context on a daemon thread (once)."""
    global _thread
    import certifi  # noqa: F401  (imported here, not on the thread)

    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="splitbuild-tls", daemon=True)
            _thread.start()


def default_context() -> ssl.SSLContext:
    """The default trust: the prepared context the first time after :func:`prepare`, else a new
    one (read from the environment now, as httpx would)."""
    global _thread, _context, _error
    with _lock:
        thread, _thread = _thread, None
    if thread is not None:
        thread.join()
    with _lock:
        context, error, _context, _error = _context, _error, None, None
    if error is not None:
        raise error
    return context if context is not None else _build()
