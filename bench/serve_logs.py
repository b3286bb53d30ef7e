"""The serving benchmark's logs of one server run: the server's own log (the store reads it gave
up) and, with ``--gc-probe``, the probe's (``bench/gc_probe``: long collections, long loop
turns, Redis's unanswered stretches), read into each half's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).parent / "gc_probe"
LOGS = ("server.log", "gc.log", "gc.log.loop", "gc.log.types", "stalls.log")


def prepare(logs: Path, env: dict[str, str], gc_probe: bool) -> list[str]:
    """An empty ``logs`` folder; with ``gc_probe``, the probe's variable set in ``env``; the
    PYTHONPATH entries the server needs for it."""
    logs.mkdir(parents=True, exist_ok=True)
    for old in LOGS:
        (logs / old).unlink(missing_ok=True)
    if not gc_probe:
        return []
    env["DEBUNK_GC_PROBE"] = str(logs / "gc.log")
    return [str(PROBE)]


def watch_stalls(redis_url: str, logs: Path) -> subprocess.Popen[bytes]:
    """The stall watcher (``gc_probe/stall_watch.py``) on ``redis_url``, logging into ``logs``."""
    script = PROBE / "stall_watch.py"
    return subprocess.Popen([sys.executable, str(script), redis_url, str(logs / "stalls.log")])


def report(logs: Path, gc_probe: bool) -> dict[str, object]:
    """One half's figures from its logs."""
    out: dict[str, object] = {"store_reads_given_up": server_log_counts(logs / "server.log")}
    if gc_probe:
        out["long_collections"] = long_collections(logs / "gc.log")
        out["long_loop_turns"] = long_turns(logs / "gc.log.loop")
        stalls = logs / "stalls.log"
        lines = stalls.read_text().splitlines() if stalls.exists() else []
        out["redis_or_machine_stalls"] = [line.split() for line in lines]
    return out


def server_log_counts(path: Path) -> dict[str, object]:
    """The RPCs the server answered degraded because a store read was given up (its
    ``<rpc> degraded: <error>`` warnings), by RPC and error, and the first and last time."""
    counts: dict[str, int] = {}
    times = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        msg = str(record.get("msg", ""))
        if " degraded: " in msg:
            counts[msg] = counts.get(msg, 0) + 1
            times.append(record.get("ts", ""))
    return {"by_message": counts, "first": min(times, default=""), "last": max(times, default="")}


def long_turns(path: Path) -> dict[str, object]:
    """The probe's event-loop turns of 100 ms or more: count, longest, and each (pid, time, ms)."""
    turns = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2] == "turn":
                turns.append((int(parts[0]), float(parts[1]), float(parts[3])))
    return {"count": len(turns), "max_ms": max((t[2] for t in turns), default=0.0),
            "turns": turns}  # fmt: skip


def long_collections(path: Path, min_ms: float = 50.0) -> dict[str, object]:
    """The probe's collections of ``min_ms`` or more, per generation: count, longest, total ms,
    the CPU ms of the thread that ran them, objects collected; and each such pass's (pid, time,
    generation, ms)."""
    passes = []
    if path.exists():
        for line in path.read_text().splitlines():
            pid, ts, gen, ms, collected, cpu = line.split()
            if float(ms) >= min_ms:
                passes.append((int(pid), float(ts), int(gen), float(ms), int(collected),
                               float(cpu)))  # fmt: skip
    by_gen: dict[str, dict[str, float]] = {}
    for _, _, gen, ms, collected, cpu in passes:
        g = by_gen.setdefault(str(gen), {"count": 0, "max_ms": 0.0, "total_ms": 0.0,
                                         "cpu_ms": 0.0, "collected": 0})  # fmt: skip
        g["count"] += 1
        g["max_ms"] = max(g["max_ms"], ms)
        g["total_ms"] = round(g["total_ms"] + ms, 1)
        g["cpu_ms"] = round(g["cpu_ms"] + cpu, 1)
        g["collected"] += collected
    return {"min_ms": min_ms, "by_generation": by_gen, "passes": [p[:4] for p in passes]}
