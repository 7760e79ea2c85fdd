"""A fault-injecting HTTP/1.1 proxy on loopback, in front of a real registry.

Each request is read whole (head and body), then a seeded schedule decides its fate:

* ``ok``: forwarded, the response relayed;
* ``reset-before``: the connection is aborted before forwarding (the registry never sees it);
* ``reset-after``: forwarded, then the connection is aborted instead of answering (the registry
  applied the request, the client does not know);
* ``500``/``502``/``503``: answered with that status without forwarding;
* ``429``: answered ``429 Too Many Requests`` with ``Retry-After``;
* ``stall``: nothing is answered for ``stall`` seconds (past the client's read timeout), then the
  connection is closed;
* ``truncate``: forwarded; the response head and half its body are relayed, then the connection
  is closed.

Runs its own asyncio loop in a thread, like :class:`tests.proxy.LatencyProxy`.

:class:`ScriptedServer` is the other kind of misbehaving peer: a loopback HTTP server that answers
from a script (429 with ``Retry-After``, HTML error pages, invalid JSON, oversized manifests...)
and records when each request came.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.loop_server import LoopThreadServer

FAULTS = ("reset-before", "reset-after", "500", "502", "503", "429", "stall", "truncate")


@dataclass
class Schedule:
    """Which fault each request gets: with probability ``rate`` one of ``faults``, seeded."""

    seed: int = 0
    rate: float = 0.2
    faults: tuple[str, ...] = FAULTS
    methods: tuple[str, ...] | None = None
    """Only requests with these methods get faults (None: every request)."""
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self, method: str, target: str) -> str:
        if self.methods is not None and method not in self.methods:
            return "ok"
        if self.rng.random() >= self.rate:
            return "ok"
        return self.rng.choice(self.faults)


class _Closed(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _Closed from exc


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], *, no_body: bool = False
) -> bytes:
    if no_body:
        return b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            out += size_line + chunk
            if size == 0:
                return bytes(out)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


class FaultProxy(LoopThreadServer):
    def __init__(self, upstream_port: int, schedule: Schedule, *, stall: float = 2.0) -> None:
        super().__init__()
        self.upstream = ("127.0.0.1", upstream_port)
        self.schedule = schedule
        self.stall = stall
        self.counts: Counter[str] = Counter()
        self.enabled = True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_head(reader)
                request_line, headers = _headers(head)
                body = await _read_body(reader, headers)
                method, target = request_line.split(" ")[:2]
                fault = self.schedule.pick(method, target) if self.enabled else "ok"
                self.counts[fault] += 1
                if not await self._serve(fault, method, head, body, writer):
                    return
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(
        self, fault: str, method: str, head: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must end."""
        if fault == "reset-before":
            writer.transport.abort()
            return False
        if fault in ("500", "502", "503", "429"):
            extra = "Retry-After: 1\r\n" if fault == "429" else ""
            text = {"500": "Internal Server Error", "502": "Bad Gateway", "503": "Service Unavailable"}.get(
                fault, "Too Many Requests"
            )
            payload = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
            writer.write(
                f"HTTP/1.1 {fault} {text}\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        if fault == "stall":
            await asyncio.sleep(self.stall)
            writer.transport.abort()
            return False
        response_head, response_body = await self._forward(method, head, body)
        if fault == "reset-after":
            writer.transport.abort()
            return False
        if fault == "truncate" and len(response_body) > 1:
            writer.write(response_head + response_body[: len(response_body) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        writer.write(response_head + response_body)
        await writer.drain()
        return True

    async def _forward(self, method: str, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            # one request per upstream connection: ask the registry to close after answering
            lines = head.decode("latin-1").split("\r\n")
            kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
            up_writer.write(request + body)
            await up_writer.drain()
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            status_line, headers = _headers(response_head)
            status = int(status_line.split(" ")[1])
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            if not no_body and "content-length" not in headers and "transfer-encoding" not in headers:
                response_body = await up_reader.read()
            else:
                response_body = await _read_body(up_reader, headers, no_body=no_body)
            # the client keeps its connection: drop the registry's "Connection: close"
            lines = response_head.decode("latin-1").split("\r\n")
            kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            if "content-length" not in headers and "transfer-encoding" not in headers and not no_body:
                kept.append(f"Content-Length: {len(response_body)}")
            return "\r\n".join([lines[0], *kept, "", ""]).encode("latin-1"), response_body
        finally:
            up_writer.close()


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request the scripted server received (``at``: ``time.monotonic()``)."""

    at: float
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 answering from ``routes``.

    ``routes`` maps a regular expression, searched in ``"METHOD /path?query"``, to the replies
    for matching requests: consumed in order, the last one repeating. The first matching route
    answers; no match is a 404. ``requests`` records every request.
    """

    def __init__(self, routes: dict[str, list[Reply]] | None = None) -> None:
        self.routes = [(re.compile(pattern), list(replies)) for pattern, replies in (routes or {}).items()]
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _scripted_handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, pattern: str, *replies: Reply) -> None:
        """Another route (checked after the ones already there)."""
        with self._lock:
            self.routes.append((re.compile(pattern), list(replies)))

    def start(self) -> ScriptedServer:
        threading.Thread(target=self._server.serve_forever, name="scripted-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def answer(self, method: str, path: str, headers: dict[str, str] | None = None) -> Reply:
        with self._lock:
            self.requests.append(Seen(time.monotonic(), method, path, dict(headers or {})))
            for pattern, replies in self.routes:
                if pattern.search(f"{method} {path}"):
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"not scripted"}]}')

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        times = [seen.at for seen in self.requests]
        return [b - a for a, b in itertools.pairwise(times)]


def _scripted_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            reply = server.answer(self.command, self.path, dict(self.headers.items()))
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


# -- a gate that decides the order of requests -----------------------------------------------------

MANIFEST_TAG = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*)$")
"""A manifest request by tag (not by digest)."""

_ACCEPT_ALL = (
    "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
)


_PAYLOAD_412 = b'{"errors":[{"code":"PRECONDITION_FAILED","message":"the tag changed"}]}'
_PRECONDITION_FAILED = (
    "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(_PAYLOAD_412)}\r\n\r\n"
).encode() + _PAYLOAD_412


@dataclass
class Held:
    """A request held at a :class:`GateProxy` until :meth:`GateProxy.release`."""

    method: str
    target: str
    headers: dict[str, str]
    go: asyncio.Event = field(default_factory=asyncio.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: int | None = None


@dataclass(frozen=True)
class TagWrite:
    """A tag PUT the registry applied: what the tag pointed at just before and just after."""

    gate: str
    tag: str
    before: str | None
    after: str | None


class GateProxy(FaultProxy):
    """A proxy that holds every manifest request by tag until the test releases it, one at a time.

    The test decides the order in which the registry sees the tag requests of several clients (one
    gate each, all in front of one registry), and waits for each answer before releasing the next;
    requests by digest and blob requests pass freely. ``busy`` counts those in flight, so a
    scheduler can tell a client waiting at the gate from one still at work.

    ``spurious_412``: that many conditional tag PUTs are answered 412 whatever the tag (a registry
    comparing the condition with another representation's ETag).

    ``hold(method, target)`` chooses other requests to hold instead; with ``answered`` they are
    forwarded at once and only their answer is held (the registry applied them, the client waits).

    With ``conditional`` the gate answers like a registry honouring conditional requests:
    a tag PUT with ``If-None-Match: *`` while the tag exists, or with an ``If-Match`` other than
    the tag's ETag, gets 412 and is not forwarded. ``writes`` records every tag PUT applied (the
    tag read upstream just before and after it; ``record`` shared by several gates).
    """

    def __init__(
        self,
        upstream_port: int,
        name: str,
        *,
        conditional: bool = False,
        record: list[TagWrite] | None = None,
        hold: Callable[[str, str], bool] | None = None,
        answered: bool = False,
        spurious_412: int = 0,
    ) -> None:
        super().__init__(upstream_port, Schedule(rate=0.0))
        self.name = name
        self.conditional = conditional
        self.hold = hold
        self.answered = answered
        self.spurious_412 = spurious_412
        self.pending: list[Held] = []
        self.busy = 0
        self.writes = record if record is not None else []
        self._state = threading.Lock()

    def held(self) -> list[Held]:
        with self._state:
            return list(self.pending)

    def idle(self) -> bool:
        """Nothing in flight but requests waiting at the gate."""
        with self._state:
            return self.busy == 0

    def release(self, held: Held) -> None:
        """Let ``held`` through (it is answered before this returns)."""
        with self._state:
            self.pending.remove(held)
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(held.go.set)
        if not held.done.wait(20):
            raise RuntimeError(f"{self.name}: {held.method} {held.target} was not answered")

    async def _serve(
        self, fault: str, method: str, head: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        request_line, headers = _headers(head)
        target = request_line.split(" ")[1]
        match = MANIFEST_TAG.match(target)
        conditional = "if-match" in headers or "if-none-match" in headers
        if method == "PUT" and match is not None and conditional and self.spurious_412 > 0:
            self.spurious_412 -= 1
            writer.write(_PRECONDITION_FAILED)
            await writer.drain()
            return True
        if self.hold is not None and self.hold(method, target):
            return await self._hold(method, target, headers, head, body, writer)
        if match is None or self.hold is not None:
            with self._state:
                self.busy += 1
            try:
                return await super()._serve(fault, method, head, body, writer)
            finally:
                with self._state:
                    self.busy -= 1
        held = Held(method, target, headers)
        with self._state:
            self.pending.append(held)
        try:
            await held.go.wait()
            if method == "PUT":
                before = await self._tag_now(match["repo"], match["tag"])
                refused = self.conditional and self._refuses(headers, before)
                if refused:
                    response_head, response_body = _PRECONDITION_FAILED, b""
                else:
                    response_head, response_body = await self._forward(method, head, body)
                    after = await self._tag_now(match["repo"], match["tag"])
                    was, now = (before[0] if before else None), (after[0] if after else None)
                    self.writes.append(TagWrite(self.name, match["tag"], was, now))
            else:
                response_head, response_body = await self._forward(method, head, body)
            held.status = int(response_head.split(b" ")[1])
            writer.write(response_head + response_body)
            await writer.drain()
            return True
        finally:
            held.done.set()

    async def _hold(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        head: bytes,
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        held = Held(method, target, headers)
        try:
            if self.answered:
                response = await self._forward(method, head, body)
            with self._state:
                self.pending.append(held)
            await held.go.wait()
            if not self.answered:
                response = await self._forward(method, head, body)
            held.status = int(response[0].split(b" ")[1])
            writer.write(response[0] + response[1])
            await writer.drain()
            return True
        finally:
            held.done.set()

    @staticmethod
    def _refuses(headers: dict[str, str], now: tuple[str, str] | None) -> bool:
        if headers.get("if-none-match", "").strip() == "*" and now is not None:
            return True
        match = headers.get("if-match")
        return match is not None and (now is None or match.strip() != now[1])

    async def _tag_now(self, repo: str, tag: str) -> tuple[str, str] | None:
        """(digest, ETag) of the tag upstream, or None when absent."""
        head = (
            f"HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {self.upstream[0]}:{self.upstream[1]}\r\n"
            f"Accept: {_ACCEPT_ALL}\r\n\r\n"
        ).encode()
        response_head, _ = await self._forward("HEAD", head, b"")
        status_line, headers = _headers(response_head)
        if int(status_line.split(" ")[1]) != 200:
            return None
        return headers["docker-content-digest"], headers.get("etag", "")
