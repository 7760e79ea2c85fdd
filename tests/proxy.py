"""A loopback TCP proxy that adds latency and counts HTTP requests and connections.

Runs its own asyncio loop in a background thread, so a benchmark can time other processes
(splitbuild, buildah, docker) talking through it. Each direction is delayed by ``delay`` seconds
(0.025 s each way = 50 ms round trip), preserving byte order.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import deque

from tests.loop_server import LoopThreadServer

REQUEST_LINE = re.compile(rb"(?:GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) \S+ HTTP/1\.[01]\r\n")


class LatencyProxy(LoopThreadServer):
    def __init__(self, upstream_port: int, *, delay: float = 0.025, upstream_host: str = "127.0.0.1") -> None:
        super().__init__()
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.requests = 0
        self.connections = 0
        self.request_lines: list[str] = []
        self.request_times: list[float] = []
        """``time.monotonic()`` when each request line arrived (before the added delay)."""
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.connections = 0
            self.request_lines = []
            self.request_times = []

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, up_writer, count=True),
                self._pipe(up_reader, client_writer, count=False),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            # Stopped with the client's connection still open (keep-alive). Not re-raised: at the
            # loop's shutdown asyncio's stream callback would log each one as an error.
            client_writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        queue: deque[tuple[float, bytes]] = deque()
        event = asyncio.Event()
        done = False
        tail = b""

        async def sender() -> None:
            while True:
                while not queue:
                    if done:
                        return
                    event.clear()
                    await event.wait()
                due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        task = asyncio.create_task(sender())
        try:
            while True:
                data = await reader.read(65536)
                if count and data:
                    window = tail + data
                    lines = REQUEST_LINE.findall(window)
                    with self._lock:
                        self.requests += len(lines)
                        self.request_lines += [x.decode().strip() for x in lines]
                        self.request_times += [time.monotonic()] * len(lines)
                    tail = (
                        window[-200:]
                        if not lines
                        else window[window.rfind(lines[-1]) + len(lines[-1]) :][-200:]
                    )
                queue.append((time.monotonic() + self.delay, data))
                event.set()
                if not data:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            done = True
            event.set()
            with contextlib.suppress(ConnectionError, OSError):
                await task
            writer.close()
