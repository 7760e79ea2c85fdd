"""What every command shares: error handling, exit codes, JSON and human output.

Command modules import only typer (and this module) at the top; the library is imported inside
the command functions so that ``splitbuild --help`` and a single command start fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer

T = TypeVar("T")

DEBUG_ENV = "SPLITBUILD_DEBUG"


def fail(message: str, code: int, hint: str | None = None) -> NoReturn:
    """Print a one-line error (plus an optional hint line) on stderr and exit with ``code``."""
    sys.stderr.write(f"splitbuild: error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    raise typer.Exit(code)


def internal_error(exc: BaseException) -> str:
    """The one line for an exception splitbuild did not expect (a bug): its type and the first line
    of its message, shortened. With ``SPLITBUILD_DEBUG=1`` the traceback is printed first."""
    _debug_traceback(exc)
    first = next(iter(str(exc).splitlines()), "")[:200]
    return f"internal error: {type(exc).__name__}" + (f": {first}" if first else "")


INTERNAL_HINT = "this is a bug in splitbuild: please report it (SPLITBUILD_DEBUG=1 shows the traceback)"


def _debug_traceback(exc: BaseException) -> None:
    if os.environ.get(DEBUG_ENV) == "1":
        import traceback

        traceback.print_exception(exc)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map library errors to one line on stderr and their exit code; never a traceback.

    A traceback is shown only when ``SPLITBUILD_DEBUG=1`` (and even then the error message itself
    is produced by the library, which never puts credentials in it). Anything else escaping is a
    bug: one line naming it, exit 1.
    """
    from splitbuild.errors import SplitbuildError

    try:
        yield
    except (typer.Exit, typer.Abort, typer.BadParameter):  # typer/click show these themselves
        raise
    except SplitbuildError as exc:
        _debug_traceback(exc)
        fail(exc.message, exc.exit_code, exc.hint)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except OSError as exc:
        _debug_traceback(exc)
        name = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{name}", 3 if isinstance(exc, FileNotFoundError) else 1)
    except Exception as exc:
        fail(internal_error(exc), 1, INTERNAL_HINT)


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async library call from a command, with the standard error handling."""
    import anyio

    async def runner() -> T:
        return await fn()

    with handle_errors():
        return anyio.run(runner)
    raise AssertionError("unreachable")  # pragma: no cover


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
