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

REQUEST_LINE = re.compile(rb"(?:GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) \S+ HTTP/1\.[01]\r\n")


class LatencyProxy:
    def __init__(self, upstream_port: int, *, delay: float = 0.025, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.port = 0
        self.requests = 0
        self.connections = 0
        self.request_lines: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.connections = 0
            self.request_lines = []

    def start(self) -> LatencyProxy:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, up_writer, count=True),
            self._pipe(up_reader, client_writer, count=False),
            return_exceptions=True,
        )

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
