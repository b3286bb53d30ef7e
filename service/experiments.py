"""The experiment configs the service assigns users with, refreshed from the store in the
background so that no request waits on them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis

from domain import experiments as assignment
from domain.experiments import Arm, Experiment
from feature_store import experiments

log = logging.getLogger("debunk.service.experiments")


class ExperimentBook:
    """All experiment configs; keeps the last good copy while the store is unreachable."""

    def __init__(self, client: Any, *, poll_interval: float) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.experiments: tuple[Experiment, ...] = ()
        self._task: asyncio.Task[None] | None = None

    def assign(self, user_id: str, now: float) -> tuple[Experiment | None, Arm | None]:
        """The running experiment and the user's arm in it (None, None when none runs)."""
        exp = assignment.running(self.experiments, now)
        return (exp, exp.arm_of(user_id)) if exp else (None, None)

    def assign_batch(
        self, user_ids: list[str], now: float
    ) -> tuple[Experiment | None, list[Arm | None]]:
        """``assign`` for many users: the running experiment and each user's arm (hashed in
        one vectorised pass)."""
        exp = assignment.running(self.experiments, now)
        if exp is None:
            return None, [None] * len(user_ids)
        return exp, [exp.arms[i] for i in exp.arm_indexes(user_ids).tolist()]

    async def refresh(self) -> None:
        loaded = await experiments.load_all_async(self.client)
        names = [e.name for e in self.experiments]
        self.experiments = tuple(loaded.values())
        if list(loaded) != names:
            log.info("experiments loaded", extra={"experiments": list(loaded)})

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (TimeoutError, redis.RedisError, OSError) as e:
                log.warning("experiment poll failed; keeping the last configs: %s", e)
            except assignment.ExperimentError as e:
                log.error("a stored experiment config is invalid; keeping the last: %s", e)
            await asyncio.sleep(self.poll_interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
