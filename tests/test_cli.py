"""The ``debunk`` command as an operator runs it: real processes, real files, real Redis."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store import keys
from feature_store.embedded import free_port
from tests.fixtures.servers import wait_for_health
from tests.fixtures.service import SERVING, snapshot


def debunk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_synth_is_reproducible_from_the_command_line(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = debunk(
            "synth", "--out", str(tmp_path / name), "--users", "500", "--days", "2", "--seed", "5"
        )
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["users"] == 500
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert a and all(
        (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in a
    )


def test_exposures_writes_the_state_and_the_rejects(small_world: Path, tmp_path: Path) -> None:
    done = debunk(
        "exposures",
        "--logs",
        str(small_world / "exposures"),
        "--tags",
        str(small_world / "tagged_items.parquet"),
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    table = pq.read_table(tmp_path / "exposures.parquet")
    assert table.num_rows == summary["pairs"] > 0
    assert table.column_names[:6] == [
        "user_id",
        "rumor_id",
        "exposures",
        "first_ts",
        "last_ts",
        "strongest_action",
    ]


def test_nightly_materializes_into_redis_url(
    small_world: Path, tmp_path: Path, client: redis.Redis, redis_url: str
) -> None:
    done = debunk(
        "nightly",
        "--data",
        str(small_world),
        "--date",
        "2026-10-05",
        "--state",
        str(tmp_path / "state"),
        env={"REDIS_URL": redis_url},
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert client.get(keys.CURRENT).decode() == summary["snapshot"]["version"]
    assert summary["snapshot"]["pairs"] == summary["state"]["pairs"] > 0
    assert list((tmp_path / "state" / "runs").glob("2026-10-05-*.json"))


def test_a_bad_log_file_fails_with_a_clear_message(small_world: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "dt=2026-10-01"
    logs.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": ["u1"], "item_id": ["i1"]}), logs / "bad.parquet")
    done = debunk(
        "exposures",
        "--logs",
        str(tmp_path / "logs"),
        "--tags",
        str(small_world / "tagged_items.parquet"),
        "--out",
        str(tmp_path / "o"),
    )
    assert done.returncode == 2
    assert "bad.parquet: missing column 'ts'" in done.stderr
    assert not (tmp_path / "o" / "exposures.parquet").exists()


def test_a_bad_date_is_refused_by_the_parser() -> None:
    done = debunk("nightly", "--data", ".", "--date", "yesterday")
    assert done.returncode == 2 and "not a YYYY-MM-DD date" in done.stderr


def free_run_of_ports(n: int) -> int:
    """The first of ``n`` consecutive loopback ports that were all free a moment ago (worker i
    serves its metrics on the first + i)."""
    for _ in range(200):
        first = free_port(65536 - n)
        socks = []
        try:
            for p in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no run of {n} free ports")


def scrape(port: int) -> bytes | None:
    """A worker's /metrics page, None while it is not up."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None


@contextlib.contextmanager
def two_workers(redis_url: str, *flags: str) -> Iterator[tuple[int, int]]:
    """``debunk serve --workers 2`` with ``flags``, once both workers are up: (port, metrics port
    of worker 1; worker 2's is the next)."""
    port, metrics = free_port(), free_run_of_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2",
         "--metrics-port", str(metrics), *flags],
        env={**os.environ, "REDIS_URL": redis_url},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not all(scrape(p) for p in (metrics, metrics + 1)):  # both workers are up
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        yield port, metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def feeds_over_fresh_connections(port: int, n: int = 20) -> list[pb.RankFeedResponse]:
    """u1's feed ``n`` times, each on a new connection (the kernel spreads them over workers)."""
    replies = []
    for _ in range(n):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            replies.append(stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=5))
    return replies


def rank_feed_counts(metrics: int, calls: int = 20) -> list[int]:
    """RankFeed calls each of the two workers answered, from their /metrics, once they add up to
    ``calls`` (a worker records a call's latency just after its reply is sent) or 10 s passed."""
    deadline = time.monotonic() + 10
    while sum(counts := _rank_feed_counts(metrics)) < calls and time.monotonic() < deadline:
        time.sleep(0.02)
    return counts


def _rank_feed_counts(metrics: int) -> list[int]:
    counts = []
    for p in (metrics, metrics + 1):
        text = scrape(p) or b""
        found = re.search(rb'debunk_rpc_latency_seconds_count\{method="RankFeed"\} (\d+)', text)
        counts.append(int(float(found.group(1))) if found else 0)
    return counts


def test_serve_with_two_workers_shares_one_port(client: redis.Redis, redis_url: str) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    with two_workers(redis_url) as (port, metrics):
        replies, counts = feeds_until_both_workers_answered(port, metrics)
    assert all([c.rumor_id for c in reply.cards] == ["r1"] for reply in replies)
    assert sum(counts) == len(replies) and all(c > 0 for c in counts), counts


def test_every_worker_runs_with_the_flags_the_operator_gave(
    client: redis.Redis, redis_url: str
) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2), ("u1", "r2", "share", 3)])
    with two_workers(redis_url, "--feed-daily-cap", "1") as (port, metrics):
        replies, counts = feeds_until_both_workers_answered(port, metrics)
    assert all(c > 0 for c in counts), counts  # worker 2 answered too
    assert {len(r.cards) for r in replies} == {1}  # the default cap (5) would give 2


def feeds_until_both_workers_answered(
    port: int, metrics: int, rounds: int = 10
) -> tuple[list[pb.RankFeedResponse], list[int]]:
    """u1's feeds over fresh connections, 20 at a time, until both workers' metrics count one.

    A worker whose metrics are up may still be binding its gRPC port, so the first 20 can all
    reach the other worker on a loaded machine; a worker never counted after 200 fails."""
    replies: list[pb.RankFeedResponse] = []
    for done in range(1, rounds + 1):
        replies += feeds_over_fresh_connections(port)
        counts = rank_feed_counts(metrics, calls=20 * done)
        if all(c > 0 for c in counts):
            break
    return replies, counts


def test_an_experiment_is_planted_stored_and_reported_from_the_command_line(
    tmp_path: Path, redis_url: str
) -> None:
    world, env = tmp_path / "world", {"REDIS_URL": redis_url}
    redis.Redis.from_url(redis_url).delete(keys.EXPERIMENTS)
    done = debunk("synth", "--out", str(world), "--users", "3000", "--days", "3",
                  "--experiment", "cli-ab", "--arms", "control:0.5,treatment:0.5",
                  "--lift", "treatment=0.2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = debunk("experiment", "create", "--config", str(world / "experiment.json"), env=env)
    assert done.returncode == 0, done.stderr
    done = debunk("experiment", "create", "other", "--arms", "a:0.5,b:0.7", "--end",
                  "2030-01-01", env=env)  # fmt: skip
    assert done.returncode == 2 and "arm shares must add up to 1" in done.stderr
    shown = debunk("experiment", "show", "cli-ab", env=env)
    assert json.loads(shown.stdout)["arms"][1]["name"] == "treatment"
    out = tmp_path / "report"
    done = debunk("report", "--experiment", "cli-ab", "--data", str(world), "--from",
                  "2026-10-01", "--to", "2026-10-03", "--out", str(out), "--bootstrap", "20",
                  env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {a["arm"] for a in summary["arms"]} == {"control", "treatment"}
    assert (out / "report.html").exists() and (out / "arms.csv").exists()
    stopped = debunk("experiment", "stop", "cli-ab", env=env)
    assert json.loads(stopped.stdout)["end"] == "2026-10-04T00:00:00Z"  # ended already: kept
