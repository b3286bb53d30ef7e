"""A lean pipelined RESP2 client for the service's hot reads.

A feed read is a few commands per user; redis-py spends tens of microseconds per command on
packing, per-reply timeouts and parsing. Here a whole pipeline is encoded into one buffer, sent
with one write, and its replies are parsed by hiredis in C. Connections (TCP, TLS, AUTH, SELECT)
come from the same settings as redis-py's; everything else keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
import redis

from feature_store.connection import RedisSettings

READ_CHUNK = 1 << 17


def encode(commands: Sequence[Sequence[bytes | str]]) -> bytes:
    """Commands as one RESP buffer (arrays of bulk strings)."""
    out: list[bytes] = []
    for cmd in commands:
        out.append(b"*%d\r\n" % len(cmd))
        for arg in cmd:
            b = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def as_dict(flat: list[bytes] | None) -> dict[bytes, bytes]:
    """An HGETALL reply (a flat RESP2 array) as a dict."""
    if not flat:
        return {}
    it = iter(flat)
    return dict(zip(it, it, strict=True))


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = hiredis.Reader()

    async def execute(self, payload: bytes, n: int) -> list[Any]:
        self.writer.write(payload)
        await self.writer.drain()
        replies: list[Any] = []
        while len(replies) < n:
            reply = self.parser.gets()
            if reply is False:
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    raise redis.ConnectionError("Redis closed the connection")
                self.parser.feed(data)
                continue
            replies.append(reply)
        return replies

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class RespPool:
    """Up to ``size`` connections; each pipeline holds one for its single round trip. A call that
    is cancelled or fails mid-flight drops its connection, so no reply is ever misattributed."""

    def __init__(self, settings: RedisSettings, *, size: int = 8) -> None:
        self.settings = settings
        self.size = size
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)

    @staticmethod
    def supports(settings: RedisSettings) -> bool:
        """Whether this client can talk to ``settings`` (one node over TCP or TLS)."""
        return not settings.cluster and urlparse(settings.url).scheme in ("redis", "rediss")

    def _ssl(self) -> ssl.SSLContext | None:
        if urlparse(self.settings.url).scheme != "rediss":
            return None
        ctx = ssl.create_default_context(cafile=self.settings.tls_ca_cert)
        if self.settings.tls_cert:
            ctx.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return ctx

    async def _connect(self) -> _Connection:
        url = urlparse(self.settings.url)
        reader, writer = await asyncio.open_connection(
            url.hostname or "127.0.0.1", url.port or 6379, ssl=self._ssl(), limit=READ_CHUNK
        )
        conn = _Connection(reader, writer)
        password = self.settings.password or (unquote(url.password) if url.password else None)
        db = url.path.strip("/")
        try:
            if password:
                user = unquote(url.username) if url.username else None
                await self._hello(conn, ["AUTH", user, password] if user else ["AUTH", password],
                                  redis.AuthenticationError)  # fmt: skip
            if db and db != "0":
                await self._hello(conn, ["SELECT", db], redis.ConnectionError)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    async def _hello(conn: _Connection, command: list[Any], error: type[Exception]) -> None:
        (reply,) = await conn.execute(encode([command]), 1)
        if isinstance(reply, hiredis.ReplyError):
            raise error(f"{command[0]}: {reply}")

    async def execute(self, commands: Sequence[Sequence[bytes | str]]) -> list[Any]:
        """The replies of ``commands``, sent as one pipeline; a Redis error reply raises."""
        if not commands:
            return []
        payload = encode(commands)
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                replies = await conn.execute(payload, len(commands))
            except BaseException:
                conn.close()  # its stream may hold half a reply: never reuse it
                raise
            self._idle.append(conn)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise redis.ResponseError(str(reply))
        return replies

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
