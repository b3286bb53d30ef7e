"""Shared fixtures: real redis-servers (embedded: TCP and unix socket, TLS, a 3-node cluster)
and small synthetic worlds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.embedded_cluster import EmbeddedCluster
from tests.fixtures.tls import TlsRedis, tls_binary

_NOT_TESTED: dict[str, str] = {}  # transport -> why its tests were skipped


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    """The session's embedded redis-server (None when $TEST_REDIS_URL names another one)."""
    if os.environ.get("TEST_REDIS_URL"):
        yield None
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis | None) -> str:
    """A real redis-server for the whole session: $TEST_REDIS_URL if set, else an embedded one."""
    return redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def unix_url(redis_server: EmbeddedRedis | None) -> str:
    """The session server's unix socket URL (same data as ``redis_url``)."""
    if redis_server is None or not redis_server.local_url.startswith("unix://"):
        _NOT_TESTED["unix socket"] = "the session's redis-server has no unix socket"
        pytest.skip(_NOT_TESTED["unix socket"])
    return redis_server.local_url


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    """A TLS-only (plus AUTH) redis-server, or a skip that says why there is none."""
    binary, why = tls_binary()
    if binary is None:
        _NOT_TESTED["TLS"] = why
        pytest.skip(f"TLS transport not tested: {why}")
    with TlsRedis(tmp_path_factory.mktemp("tls"), binary) as server:
        yield server


@pytest.fixture(scope="session")
def embedded_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A real 3-node Redis Cluster on loopback, for the whole session."""
    with EmbeddedCluster(tmp_path_factory.mktemp("cluster"), nodes=3) as c:
        yield c


@pytest.fixture(scope="session")
def cluster_settings(embedded_cluster: EmbeddedCluster) -> RedisSettings:
    return RedisSettings(url=embedded_cluster.url, cluster=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for transport, why in sorted(_NOT_TESTED.items()):
        terminalreporter.write_line(f"{transport} transport not tested: {why}", yellow=True)


@pytest.fixture
def settings(redis_url: str) -> RedisSettings:
    return RedisSettings(url=redis_url)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an empty database."""
    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    yield c
    c.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[None]:
    """The process's one SparkSession (local[2], few shuffle partitions) for the whole run,
    stopped at its end; skipped, with the reason, when pyspark or Java 17+ is missing."""
    from offline.join import spark_session

    reason = spark_session.unavailable_reason()
    if reason:
        pytest.skip(reason)
    spark_session.get_session("local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield
    spark_session.stop_session()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic world, generated once per session."""
    from offline.synth.world import synthesize

    out = tmp_path_factory.mktemp("world")
    synthesize(out, users=3000, days=5, seed=11)
    return out
