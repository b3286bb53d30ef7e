"""Shared fixtures: a real redis-server (embedded) and small synthetic worlds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole session: $REDIS_URL if set, else an embedded one."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


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
