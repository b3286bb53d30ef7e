"""CPU-heavy parts of in-contract calls (matching long group messages, ranking a big batch) run
on a small thread pool instead of the event loop, so a 50 ms RankFeed is never stuck behind
them. The pool is bounded: heavy calls queue for its threads, and the loop only competes for
the GIL with those (the interpreter hands it back every switch interval), never waits for a
whole GroupWarnings to finish. Light work stays inline, where a thread hop would cost more."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Work below these sizes runs inline (measured: matching 256 characters takes ~0.4 ms, ranking
# one user ~30 µs; a hop to a thread and back costs ~0.1 ms plus a GIL hand-over).
OFFLOAD_CHARS = 2_000
OFFLOAD_USERS = 50
# How long a thread may hold the GIL while the loop waits for it (CPython's default is 5 ms):
# the loop needs it a few times per RankFeed, so this bounds what a heavy call adds to one.
SWITCH_INTERVAL_S = 0.001


class CpuPool:
    """``run(fn, *args)``: ``fn(*args)`` on one of ``threads`` worker threads, awaited."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="debunk-cpu")
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread (with the caller's context), awaited."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Let queued work finish, then stop the threads (called after the server stopped)."""
        self._pool.shutdown(wait=True, cancel_futures=False)
