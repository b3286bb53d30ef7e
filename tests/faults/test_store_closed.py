"""The embedded store is closed: an unprivileged local user can neither talk to the server (no
password: NOAUTH; a guessed one: refused; the unix socket: permission denied) nor read its
files; a client holding the password cannot run administrative commands (CONFIG SET dir + SAVE
would write files with the owner's rights), while the owner still can."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from feature_store.embedded import EmbeddedRedis
from feature_store.embedded_secret import ADMIN_COMMANDS

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
# Runs as nobody with the system Python (stdlib only): every probe's outcome, as JSON.
PROBE = r"""
import json, socket, sys
folder, port, public = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {}
def talk(sock, *commands):
    replies = []
    for cmd in commands:
        sock.sendall(cmd)
        replies.append(sock.recv(200).decode(errors="replace").strip())
    return replies
s = socket.create_connection(("127.0.0.1", port), timeout=5)
out["tcp"] = talk(s, b"PING\r\n", b"AUTH guessed-password\r\n", b"CONFIG GET dir\r\n",
                  b"KEYS *\r\n")
s.close()
try:
    u = socket.socket(socket.AF_UNIX)
    u.connect(folder + "/redis.sock")
    out["unix"] = "connected"
except OSError as e:
    out["unix"] = type(e).__name__
for name in ("dump.rdb", "appendonly.aof", "secret.json", "redis.conf", "redis.log"):
    try:
        open(folder + "/" + name, "rb").read(1)
        out[name] = "read"
    except OSError as e:
        out[name] = type(e).__name__
try:
    open(public).read()
    out["public"] = "read"
except OSError as e:
    out["public"] = type(e).__name__
print(json.dumps(out))
"""


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A folder every user may enter (0755), so only the store's own modes keep nobody out."""
    base = Path(tempfile.mkdtemp(prefix="dbk-closed-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a probe as nobody (setpriv)")
@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv (util-linux) to drop to nobody")
def test_an_unprivileged_user_can_neither_connect_nor_read_the_files(open_parent: Path) -> None:
    public = open_parent / "public.txt"
    public.write_text("anyone may read this")  # the control: the probe can read what is open
    public.chmod(0o644)
    with EmbeddedRedis(open_parent / "redis") as server:
        redis.Redis.from_url(server.url).set("secret-key", "secret-value")
        server.admin_command("SAVE")  # a dump.rdb besides the AOF
        assert server.port is not None
        probe = subprocess.run(
            [str(SETPRIV), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "/usr/bin/python3", "-c", PROBE, str(server.data_dir), str(server.port),
             str(public)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen["public"] == "read"
    ping, auth, config, keys = seen["tcp"]
    assert ping.startswith("-NOAUTH")
    assert auth.startswith("-WRONGPASS") or auth.startswith("-ERR invalid password")
    assert config.startswith(("-NOAUTH", "-ERR unknown command"))  # 6.2 checks the name first
    assert keys.startswith("-NOAUTH")
    assert seen["unix"] == "PermissionError"
    for name in ("dump.rdb", "appendonly.aof", "secret.json", "redis.conf", "redis.log"):
        assert seen[name] == "PermissionError", name


def test_the_folder_and_every_file_in_it_are_the_owners_only(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir(mode=0o755)
    (folder / "dump.rdb").write_bytes(b"")  # as an older launcher left it: 0644
    (folder / "dump.rdb").chmod(0o644)
    with EmbeddedRedis(folder) as server:
        redis.Redis.from_url(server.url).set("k", "v")
        server.admin_command("SAVE")
        names = {p.name for p in folder.iterdir()}
        assert {"appendonly.aof", "dump.rdb", "secret.json", "redis.conf"} <= names
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for p in folder.iterdir():
            if p.is_file():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
        assert stat.S_IMODE((folder / "redis.sock").stat().st_mode) & 0o077 == 0
        cmdline = Path(f"/proc/{server._proc.pid}/cmdline").read_bytes() if server._proc else b""
        assert server.password.encode() not in cmdline  # the password is in no command line


def test_clients_cannot_run_admin_commands_and_the_owner_can(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        for command in (("CONFIG", "SET", "dir", "/"), ("SAVE",), ("BGSAVE",), ("FLUSHALL",),
                        ("DEBUG", "SLEEP", "0"), ("SHUTDOWN", "NOSAVE"), ("MODULE", "LIST"),
                        ("REPLICAOF", "127.0.0.1", "1"), ("BGREWRITEAOF",)):  # fmt: skip
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command)
        assert set(ADMIN_COMMANDS) >= {"CONFIG", "SAVE", "SHUTDOWN", "FLUSHALL", "MIGRATE"}
        assert client.ping()  # nothing above reached the server's state
        assert server.admin_command("CONFIG", "GET", "appendonly")
        server.config_set("maxmemory-policy", "noeviction")
        assert server.admin_command("SAVE") in (True, b"OK", "OK")
