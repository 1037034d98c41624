"""A loopback TCP proxy whose link can be cut and restored: the database "goes away"."""

from __future__ import annotations

import asyncio
import contextlib

LOOPBACK = "127.0.0.1"
CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every link and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        """Listen on a free port (the first time) or on the same port again."""
        self._server = await asyncio.start_server(
            self._accept, LOOPBACK, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, database_url: str) -> str:
        """Return `database_url` with its host and port replaced by this proxy's."""
        from sqlalchemy.engine import make_url

        address = make_url(database_url).set(host=LOOPBACK, port=self.port)
        return address.render_as_string(hide_password=False)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(CHUNK):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._links.discard(sink)
            sink.transport.abort()

    async def cut(self) -> None:
        """Stop listening (new connections are refused) and reset every live connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.transport.abort()
        self._links.clear()
        if self._pumps:
            await asyncio.wait(set(self._pumps), timeout=2)

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._pumps):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
