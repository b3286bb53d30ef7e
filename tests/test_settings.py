"""RedisSettings parses a Redis URL once (redis://, rediss://, unix://, AUTH, database, TLS
files, cluster), and every client is built from what it parsed."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from feature_store.settings import RedisSettings, parse_url, redacted
from feature_store.transport.factory import open_transport
from feature_store.transport.redis_py import RedisPyTransport
from feature_store.transport.resp import RespTransport


def test_tcp_tls_and_unix_urls_are_taken_apart() -> None:
    a = parse_url("redis://cache.internal:6380/3")
    assert (a.scheme, a.host, a.port, a.db, a.tls, a.unix) == ("redis", "cache.internal", 6380, 3,
                                                               False, False)  # fmt: skip
    b = parse_url("rediss://app:p%40ss@10.0.0.7/0?db=2")  # ?db= wins, as in redis-py
    assert (b.tls, b.host, b.port, b.db, b.username, b.password) == (True, "10.0.0.7", 6379, 2,
                                                                     "app", "p@ss")  # fmt: skip
    c = parse_url("unix:///run/redis/redis.sock?db=4")
    assert (c.unix, c.path, c.db, c.password) == (True, "/run/redis/redis.sock", 4, None)
    assert parse_url("redis://:only-pw@h:1").password == "only-pw"
    assert parse_url("redis://h:1").username is None


@pytest.mark.parametrize(
    "url",
    ["http://h:1", "redis+sentinel://h:1", "redis://:pw@h:1/0?ssl_cert_reqs=none", "redis://h:x",
     "redis://h:1/zero"],
)  # fmt: skip
def test_a_bad_url_fails_when_the_settings_are_made_and_never_shows_the_password(url: str) -> None:
    with pytest.raises(ValueError) as error:
        RedisSettings(url=url)
    assert "pw" not in str(error.value)


def test_the_password_in_the_url_wins_over_redis_password() -> None:
    env = {"REDIS_PASSWORD": "from-env"}
    assert RedisSettings.from_env("redis://:in-url@h:1/0", env).auth_password == "in-url"
    assert RedisSettings.from_env("redis://h:1/0", env).auth_password == "from-env"
    assert RedisSettings.from_env("redis://h:1/0", {}).auth_password is None
    assert RedisSettings.from_env("redis://u:x@h:1/5", env).hello() == [
        ("AUTH", "u", "x"), ("SELECT", "5")]  # fmt: skip
    assert RedisSettings.from_env("unix:///s.sock?db=0", env).hello() == [("AUTH", "from-env")]
    assert RedisSettings(url="redis://h:1/0").hello() == []
    assert redacted("rediss://u:secret@h:1/0") == "rediss://u:***@h:1/0"


def test_redis_py_gets_the_same_address_auth_and_tls_files() -> None:
    env = {"REDIS_PASSWORD": "pw", "REDIS_TLS_CA_CERT": "/ca.pem", "REDIS_TLS_CERT": "/c.pem",
           "REDIS_TLS_KEY": "/k.pem"}  # fmt: skip
    tls = RedisSettings.from_env("rediss://cache:6380/1", env).client_kwargs()
    assert {k: tls[k] for k in ("host", "port", "db", "password")} == {
        "host": "cache", "port": 6380, "db": 1, "password": "pw"}  # fmt: skip
    assert (tls["ssl_ca_certs"], tls["ssl_certfile"], tls["ssl_keyfile"]) == (
        "/ca.pem", "/c.pem", "/k.pem")  # fmt: skip
    unix = RedisSettings.from_env("unix:///tmp/r.sock?db=2", env).client_kwargs()
    assert unix["path"] == "/tmp/r.sock" and unix["db"] == 2
    assert "host" not in unix and "ssl_ca_certs" not in unix
    for make in ("sync_client", "async_client"):
        pools = {
            url: getattr(RedisSettings.from_env(url, env), make)().connection_pool
            for url in ("unix:///tmp/r.sock?db=2", "rediss://cache:6380/1", "redis://h:1")
        }
        kinds = [pool.connection_class.__name__ for pool in pools.values()]
        assert kinds == ["UnixDomainSocketConnection", "SSLConnection", "Connection"]
        assert pools["unix:///tmp/r.sock?db=2"].connection_kwargs["path"] == "/tmp/r.sock"
        assert pools["rediss://cache:6380/1"].connection_kwargs["ssl_ca_certs"] == "/ca.pem"


def test_the_resp_lanes_get_a_verifying_tls_context_only_for_rediss() -> None:
    assert RedisSettings(url="redis://h:1").ssl_context() is None
    ctx = RedisSettings(url="rediss://h:1").ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_redis_cluster_is_asked_for_with_redis_cluster_and_needs_host_port_and_db_0() -> None:
    settings = RedisSettings.from_env("redis://n1:7000", {"REDIS_CLUSTER": "yes"})
    assert settings.cluster and "db" not in settings.client_kwargs()
    with pytest.raises(ValueError, match="Cluster"):
        RedisSettings(url="redis://n1:7000/2", cluster=True)
    with pytest.raises(ValueError, match="Cluster"):
        RedisSettings(url="unix:///tmp/r.sock", cluster=True)
    assert not RedisSettings.from_env("redis://n1:7000", {"REDIS_CLUSTER": "0"}).cluster


def test_the_transport_is_chosen_once_from_the_settings() -> None:
    async def kinds() -> list[str]:
        out = []
        for settings in (RedisSettings(url="redis://h:1"), RedisSettings(url="rediss://h:1"),
                         RedisSettings(url="unix:///tmp/r.sock"),
                         RedisSettings(url="redis://h:1", cluster=True)):  # fmt: skip
            transport = open_transport(settings)  # nothing connects yet
            out.append(type(transport).__name__)
            await transport.aclose()
        return out

    assert asyncio.run(kinds()) == [RespTransport.__name__] * 3 + [RedisPyTransport.__name__]
