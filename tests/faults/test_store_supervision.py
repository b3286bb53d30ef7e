"""The owner of the embedded redis-server restarts it when it dies (same port, socket and data,
within a bounded time, and clients reconnect), and a second process on the same folder attaches
or fails clearly; it never starts a rival server on the same files."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from feature_store.embedded import EmbeddedRedis, RedisStartError
from feature_store.settings import RedisSettings
from feature_store.transport.resp import RespTransport
from tests.fixtures.store_chaos import chaos_rounds, wait_until

BACK_WITHIN_S = 10.0


def read_through_resp(url: str, key: str) -> bytes | None:
    async def go() -> bytes | None:
        transport = RespTransport(RedisSettings(url=url))
        try:
            return await transport.get(key)
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_a_killed_server_is_back_on_the_same_port_and_socket_with_its_data(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path) as server:
        url, local = server.url, server.local_url
        tcp, unix = redis.Redis.from_url(url), redis.Redis.from_url(local)
        for round_ in range(chaos_rounds()):
            tcp.set(f"k{round_}", f"v{round_}")
            assert server._proc is not None
            victim = server._proc.pid
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            # the clients' calls fail until it is back; then they reconnect by themselves
            wait_until(
                "the restarted server",
                lambda r=round_: server.restarts > r and tcp.ping() and unix.ping(),
                BACK_WITHIN_S,
            )
            assert time.monotonic() - killed < BACK_WITHIN_S
            assert server._proc.pid != victim and server.restarts == round_ + 1
            assert (server.url, server.local_url) == (url, local)
            assert [tcp.get(f"k{i}") for i in range(round_ + 1)] == [
                f"v{i}".encode() for i in range(round_ + 1)
            ]
            assert unix.get(f"k{round_}") == f"v{round_}".encode()
            assert read_through_resp(local, f"k{round_}") == f"v{round_}".encode()
            assert read_through_resp(url, f"k{round_}") == f"v{round_}".encode()


def _start_in_a_subprocess(folder: Path) -> dict[str, object]:
    code = (
        "import json, sys; from feature_store.embedded import EmbeddedRedis; "
        "s = EmbeddedRedis(sys.argv[1], start_timeout=5); s.start(); "
        "print(json.dumps({'owner': s.owner, 'url': s.url})); s.stop()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _servers_on(folder: Path) -> list[int]:
    """Pids of the redis-servers running in ``folder`` (the launcher starts them there)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() != "redis-server":
                    continue
                if os.readlink(proc / "cwd") == str(folder):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to count the servers")
def test_a_second_process_attaches_with_the_password_file_and_starts_no_rival(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path) as owner:
        seen = _start_in_a_subprocess(tmp_path)
        assert seen == {"owner": False, "url": owner.url}
        assert owner._proc is not None
        assert _servers_on(tmp_path.resolve()) == [owner._proc.pid]
        assert redis.Redis.from_url(owner.url).ping()  # the attached one's stop left it running


def test_a_second_process_fails_clearly_when_the_owners_server_does_not_answer(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path) as owner:
        assert owner._proc is not None
        os.kill(owner._proc.pid, signal.SIGSTOP)  # alive (no restart), answering nothing
        try:
            with pytest.raises(RedisStartError, match="owned by process"):
                EmbeddedRedis(tmp_path, start_timeout=1).start()
        finally:
            os.kill(owner._proc.pid, signal.SIGCONT)
        assert _servers_on(tmp_path.resolve()) == [owner._proc.pid]
