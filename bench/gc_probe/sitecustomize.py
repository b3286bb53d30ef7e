"""A probe of the collector's long passes and the event loop's long turns for the serving
benchmark (``--gc-probe``): with ``DEBUNK_GC_PROBE`` naming a file, every process that starts on
this PYTHONPATH appends one line per collection of at least ``DEBUNK_GC_PROBE_MS`` (20 ms by
default): pid, wall time, generation, milliseconds, objects collected, the thread's CPU ms; and
one line per loop turn of at least ``DEBUNK_LOOP_PROBE_MS`` (100 ms by default; its work, the
wait for IO left out) to the file + ".loop", with the stacks of every thread as a watchdog
thread first saw the turn running that long. Bench only: no server module imports it."""

from __future__ import annotations

import asyncio.base_events
import gc
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

_PATH = os.environ.get("DEBUNK_GC_PROBE", "")
_MIN_S = float(os.environ.get("DEBUNK_GC_PROBE_MS", "20")) / 1000
# With DEBUNK_GC_PROBE_TYPES=N, the first N long full passes of a process after its first
# freeze (the snapshot loaded) also log what the
# old generation holds (the commonest types; costly, for diagnosis only) to the file + ".types".
_TYPES = int(os.environ.get("DEBUNK_GC_PROBE_TYPES", "0"))


def _probe(path: str, min_s: float) -> None:
    """Time every pass (gc.callbacks) and log the long ones to ``path``."""
    started = [0.0, 0.0]
    typed = [0]
    pid = os.getpid()

    def on_pass(phase: str, info: dict) -> None:
        if phase == "start":
            started[0], started[1] = time.perf_counter(), time.thread_time()
            return
        took = time.perf_counter() - started[0]
        if took >= min_s:
            gen, collected = info["generation"], info["collected"]
            cpu = (time.thread_time() - started[1]) * 1000
            with open(path, "a") as f:
                f.write(f"{pid} {time.time():.3f} {gen} {took * 1000:.1f} {collected} {cpu:.1f}\n")
            if gen == 2 and typed[0] < _TYPES and gc.get_freeze_count():
                typed[0] += 1
                _log_types(path + ".types", pid)

    gc.callbacks.append(on_pass)


def _log_types(path: str, pid: int) -> None:
    """The old generation's size, the references a pass follows from it, the frozen count, its
    12 commonest types and its 5 objects with the most references."""
    counts: dict[str, int] = {}
    old = gc.get_objects(2)
    refs = 0
    widest: list[tuple[int, str]] = []
    for o in old:
        name = type(o).__qualname__
        counts[name] = counts.get(name, 0) + 1
        n = len(gc.get_referents(o))
        refs += n
        if n > 1000:
            widest.append((n, name))
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:12]
    widest = sorted(widest, reverse=True)[:5]
    with open(path, "a") as f:
        f.write(f"{pid} {time.time():.3f} old={len(old)} refs={refs} "
                f"frozen={gc.get_freeze_count()} {top} widest={widest}\n")  # fmt: skip


_LOOP_S = float(os.environ.get("DEBUNK_LOOP_PROBE_MS", "100")) / 1000


def _after_wait(select: Callable[..., Any], turn: list) -> Callable[..., Any]:
    """``select`` that marks when the wait ended: the turn's work is timed from there."""

    def probed(timeout: float | None = None) -> Any:
        events = select(timeout)
        turn[0] = time.perf_counter()
        return events

    return probed


def _loop_probe(path: str, min_s: float) -> None:
    """Time every loop turn; a watchdog logs the stacks of a turn running over ``min_s``."""
    turn = [0.0, 0]  # when the current turn started (0: between turns), its number
    run_once = asyncio.base_events.BaseEventLoop._run_once
    pid = os.getpid()

    def timed(self: asyncio.base_events.BaseEventLoop) -> None:
        selector = self._selector  # type: ignore[attr-defined]
        if not hasattr(selector, "probed"):
            selector.probed = _after_wait(selector.select, turn)
            selector.select = selector.probed
        turn[0], turn[1] = 0.0, turn[1] + 1
        try:
            run_once(self)
        finally:
            took = time.perf_counter() - turn[0] if turn[0] else 0.0
            turn[0] = 0.0
            if took >= min_s:
                with open(path, "a") as f:
                    f.write(f"{pid} {time.time():.3f} turn {took * 1000:.1f}\n")

    def watch() -> None:
        seen = -1
        while True:
            time.sleep(0.01)
            started, number = turn
            if started and number != seen and time.perf_counter() - started >= min_s:
                seen = number
                stacks = [
                    f"-- thread {ident}\n" + "".join(traceback.format_stack(frame)[-12:])
                    for ident, frame in sys._current_frames().items()
                    if ident != threading.get_ident()
                ]
                with open(path, "a") as f:
                    f.write(f"{pid} {time.time():.3f} stuck\n" + "".join(stacks))

    asyncio.base_events.BaseEventLoop._run_once = timed  # type: ignore[method-assign]
    threading.Thread(target=watch, daemon=True, name="loop-probe").start()


if _PATH:
    _probe(_PATH, _MIN_S)
    _loop_probe(_PATH + ".loop", _LOOP_S)
