"""Where Redis is and how to reach it, parsed once: every client (redis-py, the RESP lanes) is
built from one ``RedisSettings``, so URL, AUTH and TLS mean the same on every path."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisAddress:
    """A Redis URL taken apart: ``redis://[user:password@]host[:port][/db]``, the same with
    ``rediss://`` (TLS), or ``unix://[user:password@]/path/to.sock[?db=N]``."""

    scheme: str
    host: str = "localhost"
    port: int = 6379
    path: str = ""  # the socket, for unix://
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def unix(self) -> bool:
        return self.scheme == "unix"


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for error messages)."""
    u = urlparse(url)
    if not u.password:
        return url
    return u._replace(netloc=u.netloc.replace(f":{u.password}@", ":***@", 1)).geturl()


def parse_url(url: str) -> RedisAddress:
    """The parts of a Redis URL; ValueError naming what is wrong (never the password)."""
    u = urlparse(url)
    if u.scheme not in SCHEMES:
        raise ValueError(f"a Redis URL starts with redis://, rediss:// or unix://: {redacted(url)}")
    query = parse_qs(u.query)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise ValueError(f"unsupported Redis URL option {', '.join(unknown)}: {redacted(url)}")
    db_text = query.get("db", [""])[0] or ("" if u.scheme == "unix" else u.path.strip("/"))
    try:
        db = int(db_text or 0)
        port = u.port or 6379
    except ValueError:
        raise ValueError(f"bad port or database number in {redacted(url)}") from None
    return RedisAddress(
        scheme=u.scheme,
        host=u.hostname or "localhost",
        port=port,
        path=unquote(u.path) if u.scheme == "unix" else "",
        db=db,
        username=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
    )


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to talk to it.

    ``url`` may be ``redis://``, ``rediss://`` (TLS) or ``unix://``; a password in the URL (or,
    without one, ``password``: ``REDIS_PASSWORD``) is used for AUTH. TLS files come from
    ``REDIS_TLS_CA_CERT``, ``REDIS_TLS_CERT`` and ``REDIS_TLS_KEY``; ``REDIS_CLUSTER`` asks for
    Redis Cluster. The URL is parsed when the settings are made, so a bad one fails early.
    """

    url: str
    password: str | None = None
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    socket_timeout: float = 5.0
    cluster: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    address: RedisAddress = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        address = parse_url(self.url)
        if self.cluster and (address.unix or address.db):
            raise ValueError(
                f"Redis Cluster needs a host, port and database 0: {redacted(self.url)}"
            )
        object.__setattr__(self, "address", address)

    @classmethod
    def from_env(cls, url: str, env: dict[str, str] | None = None) -> RedisSettings:
        """Settings for ``url`` with AUTH, TLS and cluster options taken from the environment."""
        env = dict(os.environ) if env is None else env
        return cls(
            url=url,
            password=env.get("REDIS_PASSWORD") or None,
            tls_ca_cert=env.get("REDIS_TLS_CA_CERT") or None,
            tls_cert=env.get("REDIS_TLS_CERT") or None,
            tls_key=env.get("REDIS_TLS_KEY") or None,
            cluster=env.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes"),
        )

    @property
    def auth_password(self) -> str | None:
        """The password sent with AUTH: the URL's, else ``password``."""
        return self.address.password or self.password

    def hello(self) -> list[tuple[str, ...]]:
        """The commands a new connection sends first: AUTH (with the username when the URL
        names one) and SELECT of a database other than 0."""
        out: list[tuple[str, ...]] = []
        password, user = self.auth_password, self.address.username
        if password:
            out.append(("AUTH", user, password) if user else ("AUTH", password))
        if self.address.db:
            out.append(("SELECT", str(self.address.db)))
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        """For ``rediss://``: verify the server against ``tls_ca_cert`` (else the system CAs)
        and its name, and present ``tls_cert``/``tls_key`` when given; None otherwise."""
        if not self.address.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca_cert)
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's connections (sync and asyncio alike)."""
        a = self.address
        kwargs: dict[str, Any] = {"socket_timeout": self.socket_timeout}
        if a.unix:
            kwargs["path"] = a.path
        else:
            kwargs.update(host=a.host, port=a.port)
        if not self.cluster:
            kwargs["db"] = a.db
        if a.username:
            kwargs["username"] = a.username
        if self.auth_password:
            kwargs["password"] = self.auth_password
        if a.tls:
            if self.tls_ca_cert:
                kwargs["ssl_ca_certs"] = self.tls_ca_cert
            if self.tls_cert:
                kwargs["ssl_certfile"] = self.tls_cert
            if self.tls_key:
                kwargs["ssl_keyfile"] = self.tls_key
        return {**kwargs, **self.extra}

    def sync_client(self, **overrides: Any) -> redis.Redis:
        """A blocking client, for the nightly job and the CLI (a cluster client when asked)."""
        kwargs = {**self.client_kwargs(), **overrides}
        if self.cluster:
            return redis.cluster.RedisCluster(ssl=self.address.tls, **kwargs)
        kind = (redis.UnixDomainSocketConnection if self.address.unix
                else redis.SSLConnection if self.address.tls else redis.Connection)  # fmt: skip
        # A pool of our own, as from_url builds one: no retries with back-off (the client
        # constructor's default), so a Redis that is down fails a call at once.
        return redis.Redis.from_pool(redis.ConnectionPool(connection_class=kind, **kwargs))

    def async_client(self, **overrides: Any) -> redis.asyncio.Redis:
        """An asyncio client, for the service (a cluster client when asked)."""
        kwargs = {**self.client_kwargs(), **overrides}
        if self.cluster:
            return redis.asyncio.cluster.RedisCluster(ssl=self.address.tls, **kwargs)
        aio = redis.asyncio
        kind = (aio.UnixDomainSocketConnection if self.address.unix
                else aio.SSLConnection if self.address.tls else aio.Connection)  # fmt: skip
        return aio.Redis.from_pool(aio.ConnectionPool(connection_class=kind, **kwargs))
