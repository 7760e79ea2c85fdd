"""A hostile registry on 127.0.0.1: the attacks of issue 14 as a test fixture.

Routes map a regular expression (searched in ``"METHOD /path?query"``) to an :class:`Attack`, or
to a function of the :class:`Request` returning one. An attack can echo the request's
``Authorization`` header in its JSON error, send an endless body (up to ``endless`` bytes, far more
than any cap, then close), declare a huge ``Content-Length``, or trickle its answer (head and body)
one byte every ``trickle`` seconds. Unmatched requests get a 404. ``requests`` records them all.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from tests.loop_server import LoopThreadServer

ENDLESS = 512 * 1024 * 1024
"""What an "endless" body sends at most: far past every cap (64 KiB, 4 MiB, 32 MiB) and past the
200 MiB a command may use, so that a client reading it whole is caught, not run out of memory."""
_FILL = b"x" * (256 * 1024)


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


@dataclass(frozen=True)
class Attack:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    endless: int = 0
    """Bytes of filler after ``body`` (no Content-Length, then the connection is closed)."""
    declared: int | None = None
    """A Content-Length to claim (then ``endless`` bytes at most are sent)."""
    trickle: float | None = None
    """Seconds between bytes of the whole answer, head included."""
    trickle_body: float | None = None
    """Seconds between bytes of the body (the head is sent at once)."""


def echo_authorization(request: Request, status: int = 400) -> Attack:
    """A JSON error whose message repeats the Authorization header the client sent."""
    message = f"invalid header Authorization: {request.authorization}"
    body = json.dumps({"errors": [{"code": "DENIED", "message": message, "detail": request.headers}]})
    return Attack(status, {"Content-Type": "application/json"}, body.encode())


Route = Attack | Callable[[Request], Attack]


class HostileServer(LoopThreadServer):
    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        super().__init__()
        self.routes: list[tuple[re.Pattern[str], Route]] = [
            (re.compile(p), r) for p, r in (routes or {}).items()
        ]
        self.requests: list[Request] = []
        self.sent = 0
        """Body bytes written in all (how much of the endless bodies the clients took)."""
        self._lock = threading.Lock()

    def add(self, pattern: str, route: Route) -> None:
        with self._lock:
            self.routes.append((re.compile(pattern), route))

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _route(self, request: Request) -> Attack:
        with self._lock:
            self.requests.append(request)
            for pattern, route in self.routes:
                if pattern.search(f"{request.method} {request.target}"):
                    return route(request) if callable(route) else route
        return Attack(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"NOT_FOUND"}]}')

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._answer(self._route(request), request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    async def _answer(self, attack: Attack, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Write the answer; whether the connection may be reused."""
        headers = {"Content-Type": "application/json", **attack.headers}
        open_ended = attack.endless and attack.declared is None
        if attack.declared is not None:
            headers["Content-Length"] = str(attack.declared)
        elif not open_ended:
            headers["Content-Length"] = str(len(attack.body))
        if open_ended:
            headers["Connection"] = "close"
        head = f"HTTP/1.1 {attack.status} Hostile\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        first = (head + "\r\n").encode() + (attack.body if request.method != "HEAD" else b"")
        if attack.trickle is not None or attack.trickle_body is not None:
            at_once = len(first) - len(attack.body) if attack.trickle is None else 0
            writer.write(first[:at_once])
            for i in range(at_once, len(first)):
                await writer.drain()
                await asyncio.sleep(attack.trickle or attack.trickle_body or 0.0)
                writer.write(first[i : i + 1])
            await writer.drain()
            return False
        writer.write(first)
        await writer.drain()
        if not attack.endless or request.method == "HEAD":
            return attack.declared is None
        left = attack.endless
        while left > 0:
            piece = _FILL[: min(len(_FILL), left)]
            writer.write(piece)
            await writer.drain()
            left -= len(piece)
            self.sent += len(piece)
        return False


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif headers.get("content-length", "0").isdigit() and int(headers.get("content-length", "0")):
        body = await reader.readexactly(int(headers["content-length"]))
    return Request(method, target, headers, body)
