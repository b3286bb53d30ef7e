"""feature_store.transport.resp_pool: the lean auto-pipelined client of the hot feed reads,
against a real redis-server: same answers as redis-py, concurrent calls share a connection and
each gets its own replies, errors, cancellations and lost connections are safe."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.transport.encoding import as_dict
from feature_store.transport.resp_pool import RespPool


def test_a_pipeline_answers_as_redis_py_does(client: redis.Redis, settings: RedisSettings) -> None:
    client.hset("h", mapping={"a": "1", "b": "\x00\xff"})
    client.set("s", "x" * 300_000)  # a reply larger than one read

    async def go() -> list:
        pool = RespPool(settings, size=2)
        try:
            return await pool.execute(
                [(b"HGETALL", b"h"), (b"HGET", b"h", b"a"), (b"HGET", b"h", b"zz"),
                 (b"HGETALL", b"none"), (b"GET", b"s")]
            )  # fmt: skip
        finally:
            await pool.aclose()

    got = asyncio.run(go())
    assert as_dict(got[0]) == client.hgetall("h")
    assert got[1:4] == [b"1", None, []]
    assert got[4] == b"x" * 300_000


def test_an_error_reply_raises_and_the_connection_stays_usable(
    client: redis.Redis, settings: RedisSettings
) -> None:
    client.set("s", "x")

    async def go() -> bytes:
        pool = RespPool(settings, size=1)
        try:
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await pool.execute([(b"HGETALL", b"s")])
            return (await pool.execute([(b"GET", b"s")]))[0]
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == b"x"


def test_a_cancelled_call_never_leaves_replies_for_the_next_one(
    client: redis.Redis, settings: RedisSettings
) -> None:
    client.hset("big", mapping={f"f{i}": "v" * 100 for i in range(2000)})
    client.set("s", "mine")

    async def go() -> list:
        pool = RespPool(settings, size=1)
        try:
            for _ in range(20):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(pool.execute([(b"HGETALL", b"big")] * 200), 1e-4)
                assert await pool.execute([(b"GET", b"s")]) == [b"mine"]
            return pool.connections
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == 1  # one connection, still healthy, still in use


def test_concurrent_calls_share_one_connection_and_each_gets_its_own_replies(
    client: redis.Redis, settings: RedisSettings
) -> None:
    for i in range(300):
        client.hset(f"h{i}", mapping={"i": str(i), "pad": "x" * (i * 7)})

    async def go() -> tuple[list, int, int]:
        pool = RespPool(settings, size=1)
        try:
            calls = [
                pool.execute([(b"HGET", f"h{i}", b"i"), (b"HGETALL", f"h{(i * 7) % 300}")])
                for i in range(300)
            ]
            got = await asyncio.gather(*calls)
            return got, pool.connections, len(client.client_list())
        finally:
            await pool.aclose()

    got, connections, _ = asyncio.run(go())
    assert connections == 1
    for i, (value, whole) in enumerate(got):
        assert value == str(i).encode()
        assert as_dict(whole)[b"i"] == str((i * 7) % 300).encode()


def test_calls_made_while_a_round_trip_is_out_go_together_when_it_returns(
    client: redis.Redis, settings: RedisSettings
) -> None:
    client.set("s", "v")

    async def go() -> tuple[list, int]:
        pool = RespPool(settings, size=1)
        try:
            await pool.execute([(b"PING",)])  # connected
            lane = pool._lanes[0]
            writes = 0
            write = lane.transport.write

            def counting(data: bytes) -> None:
                nonlocal writes
                writes += 1
                write(data)

            lane.transport.write = counting  # type: ignore[method-assign]
            first = asyncio.ensure_future(pool.execute([(b"GET", b"s")]))
            while not lane.written:  # the first call's commands are on the wire
                await asyncio.sleep(0)
            later = [asyncio.ensure_future(pool.execute([(b"GET", b"s")])) for _ in range(20)]
            got = await asyncio.gather(first, *later)
            return got, writes
        finally:
            await pool.aclose()

    got, writes = asyncio.run(go())
    assert got == [[b"v"]] * 21
    assert writes == 2  # the first call, then the twenty queued behind it in one write


def test_a_call_past_its_timeout_fails_alone_and_its_late_replies_are_dropped(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path / "r") as server:
        assert server._proc is not None
        redis.Redis.from_url(server.url).set("s", "mine")

        async def go() -> tuple[float, list, list, int]:
            pool = RespPool(RedisSettings(url=server.local_url), size=1)
            try:
                assert await pool.execute([(b"PING",)], timeout=1.0) == [b"PONG"]
                os.kill(server._proc.pid, signal.SIGSTOP)
                try:
                    started = time.monotonic()
                    short = pool.execute([(b"GET", b"s")], timeout=0.05)
                    long = asyncio.ensure_future(pool.execute([(b"GET", b"s")], timeout=5.0))
                    with pytest.raises(TimeoutError):
                        await short
                    waited = time.monotonic() - started
                    assert not long.done()  # its own deadline is later
                finally:
                    os.kill(server._proc.pid, signal.SIGCONT)
                late = await long  # the timed-out call's replies were read and dropped
                after = await pool.execute([(b"GET", b"s")], timeout=1.0)
                with pytest.raises(TimeoutError):
                    await pool.execute([(b"PING",)], timeout=0.0)  # no time left: not sent
                return waited, late, after, pool.connections
            finally:
                await pool.aclose()

        waited, late, after, connections = asyncio.run(go())
        assert 0.04 <= waited < 1.0
        assert late == after == [b"mine"]
        assert connections == 1  # the same connection throughout


def test_a_lost_connection_fails_its_calls_and_the_next_call_reconnects(
    client: redis.Redis, settings: RedisSettings
) -> None:
    client.set("s", "back")

    async def go() -> list:
        pool = RespPool(settings, size=1)
        try:
            await pool.execute([(b"CLIENT", b"SETNAME", b"victim")])
            with pytest.raises(redis.ConnectionError):
                await pool.execute([(b"CLIENT", b"KILL", b"SKIPME", b"no", b"TYPE", b"normal"),
                                    (b"GET", b"s")])  # fmt: skip
            return await pool.execute([(b"GET", b"s")])
        finally:
            await pool.aclose()

    assert asyncio.run(go()) == [b"back"]


def test_auth_and_database_come_from_the_settings(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r") as server:  # the embedded server has a password
        url = server.url.replace(f":{server.password}@", "").rsplit("/", 1)[0] + "/3"
        redis.Redis.from_url(url, password=server.password).set("k", "db3")

        async def go(password: str | None) -> list:
            pool = RespPool(RedisSettings(url=url, password=password))
            try:
                return await pool.execute([(b"GET", b"k")])
            finally:
                await pool.aclose()

        assert asyncio.run(go(server.password)) == [b"db3"]
        with pytest.raises(redis.AuthenticationError):
            asyncio.run(go("wrong"))


def test_a_unix_socket_url_is_read_with_its_database_and_password(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r") as server:
        assert server.local_url.startswith("unix://")
        url = server.local_url.replace("?db=0", "?db=2")  # the password is in the URL
        redis.Redis.from_url(url).hset("h", "f", "db2")

        async def go(settings: RedisSettings) -> list:
            pool = RespPool(settings)
            try:
                return await pool.execute([(b"HGETALL", b"h"), (b"HGET", b"h", b"f")])
            finally:
                await pool.aclose()

        assert asyncio.run(go(RedisSettings(url=url))) == [[b"f", b"db2"], b"db2"]
        bare = url.replace(f":{server.password}@", "")
        settings = RedisSettings(url=bare, password=server.password)
        assert asyncio.run(go(settings)) == [[b"f", b"db2"], b"db2"]
        with pytest.raises(redis.AuthenticationError):
            asyncio.run(go(RedisSettings(url=bare, password="wrong")))
