"""Keeps a child process running: when it dies without being asked to, start it again.

A watcher thread waits on the child; on an unexpected exit it calls ``restart`` (which starts a
new child and returns it once it is ready, or None) with a bounded exponential backoff between
failed attempts, until ``stop``. The owner of the embedded redis-server runs one, so a
SIGKILLed or crashed server is back on the same port and socket, with its data, in well under a
second when restarts succeed.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable

log = logging.getLogger("debunk.store")

MIN_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0


class Supervisor:
    """Watches ``proc``; replaces it through ``restart`` when it exits unasked."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        restart: Callable[[], subprocess.Popen[bytes] | None],
        *,
        name: str = "redis-server",
    ) -> None:
        self.proc = proc
        self.restarts = 0  # how many times a dead child was replaced
        self._restart = restart
        self._name = name
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            log.warning("%s exited with %s; restarting it", self._name, code)
            replacement = self._replace()
            if replacement is None:
                return  # stopping
            with self._lock:
                if self._stopping.is_set():
                    replacement.kill()
                    replacement.wait()
                    return
                self.proc = replacement
                self.restarts += 1
            log.warning("%s restarted (pid %s)", self._name, replacement.pid)

    def _replace(self) -> subprocess.Popen[bytes] | None:
        """A ready replacement, retried with a doubling delay capped at MAX_BACKOFF_S; None
        once ``stop`` was called."""
        delay = MIN_BACKOFF_S
        while not self._stopping.is_set():
            try:
                proc = self._restart()
            except Exception:  # the watcher must outlive any one failed attempt
                log.exception("%s did not start", self._name)
                proc = None
            if proc is not None:
                return proc
            self._stopping.wait(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        return None

    def stop(self) -> subprocess.Popen[bytes]:
        """No more restarts; returns the current child, for its owner to shut down."""
        with self._lock:
            self._stopping.set()
            return self.proc

    def join(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
