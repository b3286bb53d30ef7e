"""The embedded redis-server: starts, answers, is shared, saves its data, is scheduled with its
owner, and always stops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from feature_store.connection import RedisSettings, redis_settings
from feature_store.embedded import EmbeddedRedis, free_port


def test_starts_answers_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        assert redis.Redis.from_url(url).ping()
        assert server.owner
    finally:
        server.stop()
    assert server._proc is not None and server._proc.poll() is not None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_runs_in_the_owners_session_and_a_process_group_of_its_own(tmp_path: Path) -> None:
    """Our session (so our autogroup: in a session of its own it waited for a core for up to
    seconds while the service held both, 0074), but not our process group (Ctrl-C is ours to
    handle, then we stop it cleanly)."""
    with EmbeddedRedis(tmp_path) as server:
        pid = int(redis.Redis.from_url(server.url).info("server")["process_id"])
        assert os.getsid(pid) == os.getsid(0)
        assert os.getpgid(pid) == pid != os.getpgid(0)
        group = Path(f"/proc/{pid}/autogroup")
        if group.exists():
            assert group.read_text() == Path("/proc/self/autogroup").read_text()


def test_data_survives_a_restart_in_the_same_folder(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        redis.Redis.from_url(first.url).set("k", "v")
    with EmbeddedRedis(tmp_path) as second:
        assert redis.Redis.from_url(second.url).get("k") == b"v"


def test_a_second_process_attaches_instead_of_starting_another(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as owner:
        attached = EmbeddedRedis(tmp_path)
        assert attached.start() == owner.url
        assert not attached.owner
        attached.stop()  # not the owner: must leave the server running
        assert redis.Redis.from_url(owner.url).ping()


def test_local_processes_reach_it_over_a_unix_socket(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as owner:
        socket = tmp_path.resolve() / "redis.sock"
        assert owner.local_url == f"unix://:{owner.password}@{socket}?db=0"
        redis.Redis.from_url(owner.local_url).set("k", "over the socket")
        assert redis.Redis.from_url(owner.url).get("k") == b"over the socket"
        attached = EmbeddedRedis(tmp_path)
        attached.start()
        assert attached.local_url == owner.local_url  # learnt from the running server's info


def test_a_folder_too_deep_for_a_socket_address_uses_tcp_only(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep) as server:
        assert server.local_url == server.url
        assert redis.Redis.from_url(server.local_url).ping()
        assert not (deep / "redis.sock").exists()


def test_the_embedded_default_hands_out_the_socket_url(tmp_path: Path) -> None:
    with redis_settings({"DEBUNK_HOME": str(tmp_path)}) as settings:
        assert settings.url.startswith("unix://")
        assert settings.sync_client().ping()


def test_stops_when_the_block_raises(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    with pytest.raises(RuntimeError), server:
        raise RuntimeError("boom")
    assert server._proc is not None and server._proc.poll() is not None


def test_redis_url_wins_over_the_embedded_default(tmp_path: Path, redis_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DEBUNK_HOME": str(tmp_path)}
    with redis_settings(env) as settings:
        assert settings.url == redis_url
    assert not (tmp_path / "redis").exists()


def test_auth_and_tls_settings_come_from_the_environment() -> None:
    env = {"REDIS_PASSWORD": "s3cret", "REDIS_TLS_CA_CERT": "/ca.pem"}
    kwargs = RedisSettings.from_env("rediss://cache:6380/0", env).client_kwargs()
    assert kwargs["password"] == "s3cret"
    assert kwargs["ssl_ca_certs"] == "/ca.pem"
    plain = RedisSettings.from_env("redis://cache:6379/0", env).client_kwargs()
    assert "ssl_ca_certs" not in plain


def test_a_password_protected_server_is_reached_with_redis_password(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:  # the embedded server always has a password
        bare = server.url.replace(f":{server.password}@", "")
        with pytest.raises(redis.AuthenticationError):
            RedisSettings(url=bare).sync_client().ping()
        good = RedisSettings.from_env(bare, {"REDIS_PASSWORD": server.password})
        assert good.sync_client().ping()
        in_url = bare.replace("redis://", f"redis://:{server.password}@")
        assert RedisSettings.from_env(in_url, {}).sync_client().ping()


def test_a_free_port_can_be_asked_for_under_a_bound() -> None:
    # cluster nodes need one: their bus listens on port + 10000
    assert all(free_port(below=55536) < 55536 for _ in range(50))
    assert 0 < free_port() < 65536
