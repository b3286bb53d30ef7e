"""The durability policy and the start-up check: a server that cannot keep acknowledged events
under the policy is named in a warning (read through CONFIG GET where clients may, else through
INFO and the embedded launcher's record); a server that can raises none; nothing ever fails
the start."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

from feature_store import durability
from feature_store.embedded import EmbeddedRedis, find_redis_server, free_port
from feature_store.settings import RedisSettings
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import NOT_SERVING


def check(url: str, policy: str) -> list[str]:
    async def go() -> list[str]:
        client = RedisSettings(url=url).async_client()
        try:
            return await durability.check_persistence(client, policy)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def bare_server(tmp_path: Path) -> Iterator[str]:
    """A redis-server as an operator might run one: no AOF, CONFIG open to clients."""
    port = free_port()
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(500):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                proc.poll()
                assert proc.returncode is None, "redis-server exited"
                asyncio.run(asyncio.sleep(0.02))
        yield url
    finally:
        proc.kill()
        proc.wait()


def test_the_policy_comes_from_the_environment() -> None:
    assert durability.fsync_policy({}) == durability.DEFAULT_FSYNC
    assert durability.fsync_policy({"DEBUNK_REDIS_FSYNC": "everysec"}) == "everysec"
    with pytest.raises(ValueError, match="DEBUNK_REDIS_FSYNC"):
        durability.fsync_policy({"DEBUNK_REDIS_FSYNC": "no"})


def test_an_operators_server_is_read_through_config_get(bare_server: str) -> None:
    assert any("appendonly no" in p for p in check(bare_server, "always"))
    admin = redis.Redis.from_url(bare_server)
    admin.config_set("appendonly", "yes")
    admin.config_set("appendfsync", "everysec")
    assert check(bare_server, "everysec") == []
    assert any("not always" in p for p in check(bare_server, "always"))
    admin.config_set("appendfsync", "always")
    assert check(bare_server, "always") == []


@pytest.mark.parametrize(("fsync", "policy", "ok"), [
    ("always", "always", True), ("everysec", "everysec", True), ("always", "everysec", True),
    ("everysec", "always", False),
])  # fmt: skip
def test_the_embedded_server_is_read_without_config(
    tmp_path: Path, fsync: str, policy: str, ok: bool
) -> None:
    with EmbeddedRedis(tmp_path, fsync=fsync) as server:
        with pytest.raises(redis.ResponseError):
            redis.Redis.from_url(server.url).config_get("appendfsync")  # renamed: not for clients
        assert (check(server.local_url, policy) == []) is ok


def test_an_embedded_server_without_aof_is_named(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, extra_args=("--appendonly", "no")) as server:
        assert any("appendonly no" in p for p in check(server.url, "always"))


def test_the_service_warns_at_start_and_starts_anyway(
    bare_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="debunk.store")
    svc = ServiceThread(RedisSettings(url=bare_server)).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, NOT_SERVING) == NOT_SERVING  # serving, no snapshot yet
    finally:
        svc.stop()
    assert any("cannot honour" in r.getMessage() and "appendonly no" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_a_server_that_is_down_is_a_warning_not_a_failure() -> None:
    async def go() -> list[str]:
        client = RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0").async_client()
        try:
            return await durability.warn_unless_durable(client, "always", timeout=1)
        finally:
            await client.aclose()

    assert any("not checked" in p for p in asyncio.run(go()))
