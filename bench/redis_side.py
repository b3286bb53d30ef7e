"""What Redis and the machine did during one half of the serving benchmark, from Redis's own
record and from /proc: the commands it ran (the writes among them, so their fsyncs), its AOF and
snapshot work, its stalls (``LATENCY HISTORY`` per event), the CPU its main thread ran and waited
for, its context switches and major faults, and the cores' steal, iowait and idle time. Taken
before and after the load (``RedisSide``); the difference is the half's ``redis_side``."""

from __future__ import annotations

from typing import Any

import redis

from bench.gc_probe.stall_watch import os_side, redis_pid

# INFO fields whose change over a half says what persistence work Redis did.
PERSISTENCE = ("aof_current_size", "aof_delayed_fsync", "aof_rewrites", "rdb_saves",
               "rdb_changes_since_last_save", "total_forks")  # fmt: skip
STATS = ("total_commands_processed", "total_connections_received", "expired_keys",
         "evicted_keys", "latest_fork_usec")  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSide:
    """Counters of one redis-server on this machine, read before and after a half."""

    def __init__(self, store: redis.Redis) -> None:
        self.store = store
        self.pid = redis_pid(store)
        self.before = self.read()

    def read(self) -> dict[str, Any]:
        """INFO's persistence, stats and per-command counts, and /proc's counters."""
        info = self.store.info("all")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()
                 if k.startswith("cmdstat_")}  # fmt: skip
        fields = {k: int(info.get(k, 0) or 0) for k in (*PERSISTENCE, *STATS)}
        return {"info": fields, "calls": calls, "os": os_side(self.pid)}

    def report(self) -> dict[str, Any]:
        """The half's differences, and Redis's stall record (every event's history)."""
        after = self.read()
        calls = {k: n - self.before["calls"].get(k, 0) for k, n in after["calls"].items()}
        info = {k: after["info"][k] - self.before["info"][k] for k in after["info"]}
        info["latest_fork_usec"] = after["info"]["latest_fork_usec"]
        os_ = {k: round(v - self.before["os"].get(k, 0), 1) for k, v in after["os"].items()
               if k != "cpu"}  # fmt: skip
        return {
            "commands": {k: n for k, n in sorted(calls.items()) if n},
            "persistence_and_stats": info,
            "os": os_,
            "latency_history": self.history(),
        }

    def history(self) -> dict[str, list[list[int]]]:
        """``LATENCY HISTORY`` of every event ``LATENCY LATEST`` names: (unix time, ms) pairs."""
        out = {}
        for event in self.store.execute_command("LATENCY", "LATEST"):
            name = _text(event[0])
            rows = self.store.execute_command("LATENCY", "HISTORY", name)
            out[name] = [[int(t), int(ms)] for t, ms in rows]
        return out
