"""The serving benchmark's server side: the server process's CPU and memory from /proc, the
ports its workers use, waiting for them to load the snapshot, and the ranking policy it serves."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Awaitable
from pathlib import Path

from domain.experiments import Experiment
from feature_store.embedded import free_port


class ServerCpu:
    """CPU seconds used so far by the server process and its worker children (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        pids = [self.pid]
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            pids += [int(p) for p in task.read_text().split()]
        return pids

    def rss_mb(self) -> list[float]:
        """The resident set of each worker process (the supervisor's own first), in MB."""
        out = []
        for pid in self._pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS"))
            out.append(round(kb / 1024, 1))
        return out

    def seconds(self) -> float:
        total = 0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / self.tick


async def measured(
    cpu: ServerCpu, run: Awaitable[dict[str, float]], users_per_call: int = 1
) -> dict[str, float]:
    """``run``'s result plus the server's CPU microseconds per call (per user for batches)."""
    before = cpu.seconds()
    result = await run
    spent = cpu.seconds() - before
    result["server_cpu_us_per_call"] = round(spent / max(1, result["calls"]) * 1e6, 1)
    if users_per_call > 1:
        result["server_cpu_us_per_user"] = round(
            spent / max(1, result["calls"] * users_per_call) * 1e6, 1
        )
    return result


def set_policy(url: str, policy: str) -> None:
    """For ``rules``: an experiment whose one arm ranks by the rules alone (the model in the
    snapshot is read but not used), to compare the serving cost of the learned ranker. For
    ``model``: no experiment (a reused world may hold the rules one)."""
    import redis

    from feature_store import experiments

    client = redis.Redis.from_url(url)
    experiments.delete(client, "bench-rules")
    if policy == "rules":
        now = time.time()
        only = Experiment.from_dict({
            "name": "bench-rules", "arms": [{"name": "rules", "share": 1.0, "policy": "rules"}],
            "start": now - 60, "end": now + 24 * 3600,
        })  # fmt: skip
        experiments.save(client, only)


def free_port_run(n: int) -> int:
    """The first of ``n`` consecutive loopback ports that were all free a moment ago (worker i
    serves its metrics on the first + i)."""
    for _ in range(100):
        first = free_port()
        if first + n <= 65536 and all(_free(first + i) for i in range(1, n)):
            return first
    raise RuntimeError(f"no {n} consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_workers(metrics_port: int, workers: int, timeout: float = 300) -> None:
    """Poll each worker's /metrics until it reports an adopted snapshot (its index is built)."""
    deadline = time.monotonic() + timeout
    for i in range(workers):
        url = f"http://127.0.0.1:{metrics_port + i}/metrics"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if b"debunk_snapshot_info{" in r.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {i} did not load the snapshot in time")
            time.sleep(0.2)
