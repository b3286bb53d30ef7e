"""Tells a stall of Redis from a stall of this machine, for the serving benchmark's
``--gc-probe``: one thread pings Redis every 10 ms and logs each ping of 50 ms or more; another
sleeps 10 ms at a time and logs each wake-up 50 ms or more late (this process was not run: the
cores were held elsewhere, or the machine stalled). A slow ping with no late wake-up beside it
is Redis's own. ``python stall_watch.py REDIS_URL LOG``; runs until killed. Bench only."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import redis

PERIOD_S = 0.01
SLOW_S = 0.05


def pings(url: str, log: TextIO) -> None:
    """Ping every PERIOD_S; log the slow ones."""
    client = redis.Redis.from_url(url)
    while True:
        time.sleep(PERIOD_S)
        sent = time.perf_counter()
        client.ping()
        took = time.perf_counter() - sent
        if took >= SLOW_S:
            log.write(f"{time.time():.3f} ping {took * 1000:.1f}\n")


def wakeups(log: TextIO) -> None:
    """Sleep PERIOD_S at a time; log the late wake-ups."""
    while True:
        asked = time.perf_counter()
        time.sleep(PERIOD_S)
        late = time.perf_counter() - asked - PERIOD_S
        if late >= SLOW_S:
            log.write(f"{time.time():.3f} late {late * 1000:.1f}\n")


def main() -> None:
    url, path = sys.argv[1], sys.argv[2]
    with open(path, "a", buffering=1) as log:
        threading.Thread(target=wakeups, args=(log,), daemon=True).start()
        pings(url, log)


if __name__ == "__main__":
    main()
