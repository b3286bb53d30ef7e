"""How both sides reach Redis: ``REDIS_URL`` (with TLS and AUTH) or the embedded default."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from feature_store.embedded import EmbeddedRedis

DEFAULT_HOME = Path(".debunk")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to talk to it.

    ``url`` may be ``redis://``, ``rediss://`` (TLS) or ``unix://``; a password in the URL or in
    ``REDIS_PASSWORD`` is used for AUTH. TLS files come from ``REDIS_TLS_CA_CERT``,
    ``REDIS_TLS_CERT`` and ``REDIS_TLS_KEY``.
    """

    url: str
    password: str | None = None
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    socket_timeout: float = 5.0
    cluster: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, url: str, env: dict[str, str] | None = None) -> RedisSettings:
        """Settings for ``url`` with AUTH and TLS options taken from the environment."""
        env = dict(os.environ) if env is None else env
        return cls(
            url=url,
            password=env.get("REDIS_PASSWORD") or None,
            tls_ca_cert=env.get("REDIS_TLS_CA_CERT") or None,
            tls_cert=env.get("REDIS_TLS_CERT") or None,
            tls_key=env.get("REDIS_TLS_KEY") or None,
            cluster=env.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes"),
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's ``from_url`` (sync and asyncio alike)."""
        kwargs: dict[str, Any] = {"socket_timeout": self.socket_timeout, **self.extra}
        if self.password:
            kwargs["password"] = self.password
        if self.url.startswith("rediss://"):
            if self.tls_ca_cert:
                kwargs["ssl_ca_certs"] = self.tls_ca_cert
            if self.tls_cert:
                kwargs["ssl_certfile"] = self.tls_cert
            if self.tls_key:
                kwargs["ssl_keyfile"] = self.tls_key
        return kwargs

    def sync_client(self) -> redis.Redis:
        """A blocking client, for the nightly job and the CLI (a cluster client when asked)."""
        if self.cluster:
            return redis.cluster.RedisCluster.from_url(self.url, **self.client_kwargs())
        return redis.Redis.from_url(self.url, **self.client_kwargs())

    def async_client(self, **overrides: Any) -> redis.asyncio.Redis:
        """An asyncio client, for the service (a cluster client when asked)."""
        kwargs = {**self.client_kwargs(), **overrides}
        if self.cluster:
            return redis.asyncio.cluster.RedisCluster.from_url(self.url, **kwargs)
        return redis.asyncio.Redis.from_url(self.url, **kwargs)


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
