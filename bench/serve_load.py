"""The serving benchmark's load generator: closed-loop (maximum rate) and open-loop (fixed
rate, latency) runs of an async call, and ``Method``, one RPC spread over several channels."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import numpy as np


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The load generator's own garbage-collection pauses are not the server's latency: the
    collector is off while a measurement runs (as timeit does)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def closed_loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> dict[str, float]:
    """As many calls as ``concurrency`` workers can make in ``seconds``: the maximum rate."""
    with collector_paused():
        return await _closed_loop(call, concurrency, seconds)


async def _closed_loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> dict[str, float]:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < stop:
            await call(i)
            done += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    took = time.perf_counter() - started
    return {"calls": done, "per_s": round(done / took), "seconds": round(took, 3)}


async def open_loop(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float
) -> dict[str, float]:
    """Calls started at a fixed ``rate`` for ``seconds``; latency of each, queueing included."""
    with collector_paused():
        return await _open_loop(call, rate, seconds)


async def _open_loop(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    failed = 0
    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    n = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        nonlocal failed
        try:
            await call(i)
        except grpc.aio.AioRpcError:  # e.g. past its deadline at a rate above the maximum
            failed += 1
        latencies.append(time.perf_counter() - due)  # a failure counts at the time it took

    for i in range(n):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # Only the calls still in flight: gathering every task of the run at the end would stall
    # the loop for milliseconds and charge that to the last calls' latency.
    await asyncio.gather(*tasks)
    return {"rate": round(rate), "calls": n, "failed": failed, **percentiles(latencies)}


async def open_loop_rounds(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float, rounds: int
) -> dict[str, Any]:
    """``open_loop`` ``rounds`` times: the round with the median p99, and every round's p99 (a
    stall of the shared machine lands in one round, not in the figure)."""
    runs = [await open_loop(call, rate, seconds) for _ in range(max(1, rounds))]
    runs.sort(key=lambda r: r["p99_ms"])
    return {**runs[len(runs) // 2], "p99_ms_rounds": [r["p99_ms"] for r in runs]}


class Method:
    """One RPC over several channels (each its own connection); each call takes the channel
    with the fewest calls in flight, as a least-request balancer would, so a worker that got
    more connections than another from the kernel does not hold the whole load back.

    With ``--client raw`` (the default) requests are serialized before the load starts and
    replies are kept as bytes, as a native load generator would: the harness then spends the
    same few microseconds on every RPC, so the ratio compares what the server does. With
    ``--client proto`` each call builds its request and parses its reply in Python.
    """

    def __init__(self, channels: list[grpc.aio.Channel], path: str, reply: Any, raw: bool):
        self.raw = raw
        self.reply = reply
        self.calls = [
            c.unary_unary(path) if raw
            else c.unary_unary(path, request_serializer=_serialize,
                               response_deserializer=reply.FromString)
            for c in channels
        ]  # fmt: skip
        self.in_flight = [0] * len(channels)

    def prepare(self, request: Any) -> Any:
        """What a call sends: the serialized request (raw) or the message itself (proto)."""
        return request.SerializeToString() if self.raw else request

    async def __call__(self, request: Any, timeout: float) -> Any:
        busy = self.in_flight
        i = busy.index(min(busy))
        busy[i] += 1
        try:
            return await self.calls[i](request, timeout=timeout)
        finally:
            busy[i] -= 1

    def parse(self, reply: Any) -> Any:
        return self.reply.FromString(reply) if self.raw else reply


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()
