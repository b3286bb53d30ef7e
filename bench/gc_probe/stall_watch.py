"""Tells a stall of Redis from a stall of this machine, for the serving benchmark's
``--gc-probe``: one thread pings Redis every 10 ms and logs each ping of 50 ms or more; another
sleeps 10 ms at a time and logs each wake-up 50 ms or more late (this process was not run: the
cores were held elsewhere, or the machine stalled). A slow ping with no late wake-up beside it
is Redis's own. Each slow ping's line also says where Redis's main thread was meanwhile, from
/proc (``os_side``): ms it ran, ms it waited runnable for a core, its voluntary (it slept: a
disk wait, a page fault) and involuntary (preempted) switches, its major faults, its moves
between cores and the core it last ran on; and each core's ms in user and system code, stolen
by the hypervisor, in iowait and idle over the ping.
``python stall_watch.py REDIS_URL LOG``; runs until killed. Bench only."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import redis

PERIOD_S = 0.01
SLOW_S = 0.05
_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def redis_pid(client: redis.Redis) -> int:
    """The pid of the redis-server behind ``client`` (0 when it is not on this machine)."""
    pid = int(client.info("server").get("process_id", 0))
    return pid if Path(f"/proc/{pid}").is_dir() else 0


def os_side(pid: int) -> dict[str, float]:
    """Cumulative counters of ``pid``'s main thread and of each core, in ms or counts."""
    out: dict[str, float] = {}
    if pid:
        task = Path(f"/proc/{pid}/task/{pid}")
        try:
            ran, waited, _ = (task / "schedstat").read_text().split()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
            sched = (task / "sched").read_text()
        except OSError:
            return out
        moved = next((ln for ln in sched.splitlines() if ln.startswith("se.nr_migrations")), "")
        out["migrations"] = int(moved.split(":")[1]) if moved else 0
        out["ran_ms"] = int(ran) / 1e6
        out["waited_ms"] = int(waited) / 1e6
        out["majflt"] = int(fields[9])
        out["cpu"] = int(fields[36])
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                out["vcs"] = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                out["ivcs"] = int(line.split()[1])
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            out[f"{name}.user"] = (ticks[0] + ticks[1]) * _TICK_MS
            out[f"{name}.system"] = (ticks[2] + ticks[5] + ticks[6]) * _TICK_MS
            out[f"{name}.idle"] = ticks[3] * _TICK_MS
            out[f"{name}.iowait"] = ticks[4] * _TICK_MS
            out[f"{name}.steal"] = ticks[7] * _TICK_MS
    return out


def difference(before: dict[str, float], after: dict[str, float]) -> str:
    """``after`` minus ``before`` as ``key=value`` words (the core Redis ran on as is)."""
    words = []
    for key, value in after.items():
        if key == "cpu":
            words.append(f"cpu={int(value)}")
        elif key in before:
            words.append(f"{key}={value - before[key]:.0f}")
    return " ".join(words)


def pings(url: str, log: TextIO) -> None:
    """Ping every PERIOD_S; log the slow ones with what /proc says Redis and the cores did."""
    client = redis.Redis.from_url(url)
    pid = redis_pid(client)
    while True:
        time.sleep(PERIOD_S)
        before = os_side(pid)
        sent = time.perf_counter()
        client.ping()
        took = time.perf_counter() - sent
        if took >= SLOW_S:
            side = difference(before, os_side(pid))
            log.write(f"{time.time():.3f} ping {took * 1000:.1f} {side}\n")


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
