"""How both sides reach Redis: ``REDIS_URL`` (with TLS and AUTH) or the embedded default."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from feature_store.embedded import EmbeddedRedis
from feature_store.settings import RedisSettings

__all__ = ["DEFAULT_HOME", "RedisSettings", "home", "redis_settings"]

DEFAULT_HOME = Path(".debunk")


def home() -> Path:
    """The local folder for embedded state: ``$DEBUNK_HOME`` or ``./.debunk``."""
    return Path(os.environ.get("DEBUNK_HOME", DEFAULT_HOME))


@contextlib.contextmanager
def redis_settings(env: dict[str, str] | None = None) -> Iterator[RedisSettings]:
    """Settings from ``REDIS_URL``, or an embedded redis-server for as long as the block runs."""
    env = dict(os.environ) if env is None else env
    url = env.get("REDIS_URL")
    if url:
        yield RedisSettings.from_env(url, env)
        return
    with EmbeddedRedis(home() / "redis") as server:
        yield RedisSettings.from_env(server.local_url, env)
