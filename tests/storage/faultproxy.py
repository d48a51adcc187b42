"""A TCP proxy in front of the real S3 server that injects faults on the wire, one new connection
at a time: answer ``503 SlowDown`` (throttling), flip a byte of the request body in transit, or
cut the response after N bytes. Everything else is forwarded unchanged to the real server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class FaultProxy:
    upstream_port: int
    plan: list[str | tuple[str, int]] = field(default_factory=list)
    connections: int = 0
    injected: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        action = self.plan.pop(0) if self.plan else "forward"
        try:
            if action == "slowdown":
                self.injected += 1
                await self._slow_down(reader, writer)
            else:
                await self._forward(reader, writer, action)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # closed with the test; asyncio's stream callback would log a cancelled handler
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(handler)  # type: ignore[arg-type]

    async def _slow_down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length, expect = 0, False
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"expect":
                expect = True  # waits for "100 Continue": answer at once, body unsent
        if length and not expect:
            await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            + f"Content-Length: {len(SLOW_DOWN)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + (b"" if head.startswith(b"HEAD ") else SLOW_DOWN)
        )
        await writer.drain()

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        action: str | tuple[str, int],
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        flip = action == "flip"
        cut = action[1] if isinstance(action, tuple) and action[0] == "cut" else None

        async def upstream() -> None:
            nonlocal flip
            head = b""
            body_seen: int | None = None  # body bytes passed so far, once the head is through
            while data := await reader.read(65536):
                if flip:
                    if body_seen is None:
                        head += data
                        end = head.find(b"\r\n\r\n")
                        if end >= 0:
                            body_seen = len(head) - (end + 4)
                            start = len(data) - body_seen  # where the body starts in ``data``
                        else:
                            start = len(data)
                    else:
                        start = 0
                        body_seen += len(data)
                    target = 10 - (body_seen - (len(data) - start)) if body_seen is not None else -1
                    if body_seen is not None and 0 <= target < len(data) - start:
                        buffer = bytearray(data)
                        buffer[start + target] ^= 0x01
                        data, flip = bytes(buffer), False
                        self.injected += 1
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            sent = 0
            while data := await up_reader.read(65536):
                if cut is not None and sent + len(data) >= cut:
                    writer.write(data[: cut - sent])
                    await writer.drain()
                    self.injected += 1
                    writer.transport.abort()
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            up_writer.close()
