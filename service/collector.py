"""The garbage collector kept off the request path while the kept snapshot rows fill.

Each kept user leaves ~30 long-lived tuples; while the row cache (feature_store.row_cache)
fills, they push the collector into full passes that walk every long-lived object of the
process (one of 142 ms in a 6 s exposed load, measured in one worker). A full pass finds no
garbage among the kept rows, so each time the cache has grown by ``step`` users the young
generations are collected (cheap: they are small) and everything alive is frozen
(``gc.freeze``: moved where no pass walks it; still freed as usual when its count drops). What
freezing gives up is the collection of reference cycles that were already in the old
generation at that moment; freezes are bounded by the cache's size over ``step`` per version.
Full passes are also spaced (``tune``): with the long-lived heap frozen, CPython's own brake on
them no longer holds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Callable

POLL_S = 1.0
# Kept users between two freezes, as a share of the cache's bound.
STEP_SHARE = 0.1
# Middle-generation passes between two full ones (CPython's default: 10). Once the long-lived
# heap is frozen, CPython's other brake on full passes (a quarter of the old generation's
# survivors made since the last one) counts only the few unfrozen survivors, so at the default
# a full pass came every ~0.2 s under RankFeedBatch load, walking the in-flight batches'
# objects (20-60 ms each), and several at once while a snapshot loaded (100-180 ms each;
# decision 0071). Full passes in the serving benchmark found nothing or next to nothing
# (reference cycles are rare here and die in the young passes); the ones that reach the old
# generation wait longer, at most this many middle passes.
FULL_PASS_EVERY = 1000


def configured_full_every() -> int:
    """``DEBUNK_GC_FULL_EVERY`` (default FULL_PASS_EVERY; 0: leave CPython's threshold)."""
    return int(os.environ.get("DEBUNK_GC_FULL_EVERY", str(FULL_PASS_EVERY)))


def tune(full_every: int | None = None) -> None:
    """Full passes at most every ``full_every`` middle-generation passes (server start;
    default ``configured_full_every()``; 0: CPython's own threshold)."""
    every = configured_full_every() if full_every is None else full_every
    if every > 0:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, every)


class FreezeOnGrowth:
    """Freezes the heap whenever ``size()`` has grown by ``step`` since the last freeze."""

    def __init__(self, size: Callable[[], int], step: int) -> None:
        self.size = size
        self.step = max(1, step)
        self.frozen_at = size()
        self.freezes = 0
        self._task: asyncio.Task[None] | None = None

    def check(self) -> bool:
        """Freeze now if the size grew by ``step`` (a fall, e.g. a flip, re-bases); whether it
        did."""
        now = self.size()
        if now < self.frozen_at:
            self.frozen_at = now
        if now - self.frozen_at < self.step:
            return False
        gc.collect(1)  # the young generations' garbage is not frozen with the rest
        gc.freeze()
        self.frozen_at = now
        self.freezes += 1
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            self.check()

    def start(self) -> None:
        """Check every POLL_S until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the checks."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
