"""Serving benchmark: RankFeed throughput against an empty unary RPC (the standard health Check,
served by the same server) in the same run, RankFeed latency at half of its maximum throughput
beside the empty RPC's at that rate, RankFeedBatch users/s and server CPU, each on two mixes of
users: ``exposed`` (every user with exposure rows) and ``mix`` (``--unexposed-share``, 95%, of users
without, as a platform's feed traffic); ``--compare-filter`` runs it all twice on the same world,
first reading every user from the store (``DEBUNK_MEMBER_FILTER=0``); ``--baseline DIR`` runs it
first from another checkout (old code against this one, same world and Redis). Then SearchTop /
GroupWarnings (5 messages, 20 members) maximum throughput and latency at a fixed moderate rate
(``--pinned-rate``, 200/s), beside the empty RPC at that same rate (``--no-pinned``: not). The
rumor library is the synthetic world's (``--rumors``, 30,000 Chinese claims by default); the
index the service builds over it is timed and sized first, in a child process of its own. Load
generator and server share this machine.

The server runs ``--workers`` processes on one port (default: one per core, as deployed); the
load generator spreads its calls over ``--channels`` connections, so every worker gets some
(the kernel balances connections, not calls), with ``--batches-in-flight`` RankFeedBatch calls
at once.
The RankFeed/empty ratio is the median of ``--rounds`` alternating rounds of the two (the machine
is shared and noisy; a round's two rates are measured seconds apart), and the server's own CPU
time per call (all workers, from /proc) is reported beside each rate. RankFeedBatch's maximum
is the best of ``--batch-rounds`` rounds (outside load only ever slows a round down); every
round is reported. Each latency is measured in ``--latency-rounds`` rounds and the round with
the median p99 is reported, with every round's p99 beside it.
Every half counts the reads its server gave up (``store_reads_given_up``, from the server's log,
kept under ``DIR/logs``) and what Redis did meanwhile (``redis_side``: its commands, writes and
AOF growth, ``LATENCY HISTORY``, its main thread's CPU run and runnable-but-waiting time, context
switches, and the cores' steal, iowait and idle, ``bench/redis_side.py``); ``--gc-probe`` also
logs the servers' long collections and event-loop turns (``bench/gc_probe/sitecustomize.py``
on their PYTHONPATH) and Redis's unanswered stretches with where its main thread was meanwhile
(``bench/gc_probe/stall_watch.py``), to tell a worker's stall from Redis's.

    make bench-serve
    .venv/bin/python bench/bench_serve.py --users 300000 --rumors 30000 --seconds 5 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serve_logs
from bench.index_build import index_build
from bench.redis_side import RedisSide
from bench.serve_process import ServerCpu, free_port_run, set_policy, wait_for_workers
from bench.serve_rounds import run_load
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from offline.nightly.job import run_nightly
from offline.synth.world import synthesize

# Redis records an event (LATENCY LATEST) for any stall of its own at least this long.
REDIS_LATENCY_MS = 20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=300_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="server processes sharing the port (default: one per core)")  # fmt: skip
    p.add_argument("--channels", type=int, default=8, help="client connections")
    p.add_argument("--batches-in-flight", type=int, default=16, help="RankFeedBatch calls at once")
    p.add_argument("--rounds", type=int, default=5, help="alternating empty/RankFeed rounds")
    p.add_argument("--batch-rounds", type=int, default=3,
                   help="RankFeedBatch rounds (the best is its maximum rate)")  # fmt: skip
    p.add_argument("--latency-rounds", type=int, default=3,
                   help="rounds of each latency measurement (median p99 reported)")  # fmt: skip
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--rumors", type=int, default=30_000, help="rumor library size")
    p.add_argument("--reuse", metavar="DIR", default="",
                   help="build world and snapshot in DIR once; reuse them later")  # fmt: skip
    p.add_argument("--client", choices=("raw", "proto"), default="raw",
                   help="raw: requests serialized up front, replies kept as bytes (default); "
                   "proto: build and parse each message in Python")  # fmt: skip
    p.add_argument("--policy", choices=("model", "rules"), default="model",
                   help="rank with the snapshot's model, or by the rules alone")  # fmt: skip
    p.add_argument(
        "--pinned-rate",
        type=float,
        default=200.0,
        help="SearchTop / GroupWarnings calls per second (open loop), the empty RPC measured at "
        "the same rate beside them (default: a fixed moderate 200/s); 0: half of each one's max",
    )
    p.add_argument("--unexposed-share", type=float, default=0.95,
                   help="share of the mix's users with no exposure (default 0.95)")  # fmt: skip
    p.add_argument("--compare-filter", action="store_true",
                   help="load twice on one world: every user read from the store "
                   "(DEBUNK_MEMBER_FILTER=0, as before the filter), then the filter")  # fmt: skip
    p.add_argument("--baseline", metavar="DIR", default="",
                   help="load first a server run from the checkout in DIR (e.g. `git archive "
                   "main`, unpacked), on the same world, Redis and load: old code against this "
                   "one in one run")  # fmt: skip
    p.add_argument("--alternate", type=int, default=1, metavar="K",
                   help="with --baseline: load the old and this code K times in turn (old, "
                   "this, old, this, ...) and report each pair's gains and their median, so a "
                   "drift of the machine's load does not decide the comparison")  # fmt: skip
    p.add_argument("--no-pinned", action="store_true", help="skip SearchTop and GroupWarnings")
    p.add_argument("--gc-probe", action="store_true",
                   help="log the server processes' collections of 20 ms or more "
                   "(bench/gc_probe) and report those of 50 ms or more per half")  # fmt: skip
    args = p.parse_args()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="bench-serve-"))
    start = date.today() - timedelta(days=args.days)
    built = work / "built.json"  # written once the world and its snapshot are in place
    if not built.exists():
        synthesize(work / "world", users=args.users, days=args.days, seed=args.seed,
                   start=start, rumors=args.rumors)  # fmt: skip
    with EmbeddedRedis(work / "redis") as server:
        if not built.exists():
            night = run_nightly(work / "world", start + timedelta(days=args.days - 1),
                                work / "state", RedisSettings(url=server.url))  # fmt: skip
            built.write_text(json.dumps({"pairs": night["state"]["pairs"]}))
        pairs = json.loads(built.read_text())["pairs"]
        set_policy(server.url, args.policy)
        server.config_set("latency-monitor-threshold", str(REDIS_LATENCY_MS))
        index = index_build(server.url)  # before the server starts: the machine is idle
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        mixes = user_mixes(exposed["user_id"].unique().to_pylist(), args)
        items = pq.read_table(work / "world" / "items.parquet", columns=["text"])
        texts = items["text"].to_pylist()  # rumor copies and ordinary posts, as people search
        np.random.default_rng(args.seed).shuffle(texts)
        # The inputs are long-lived: keep the collector from walking them during the load.
        gc.collect()
        gc.freeze()
        plan = [("read_every_user", "0", "")] if args.compare_filter else []
        pairs_run = max(1, args.alternate) if args.baseline else 1
        runs, turns = {}, []
        for turn in range(pairs_run):
            base = [("baseline", "1", args.baseline)] if args.baseline else []
            for name, flag, code in [
                *(plan if turn == 0 else []),
                *base,
                ("member_filter", "1", ""),
            ]:
                logs = work / "logs" / f"{name}-{turn}"
                runs[name] = serve_and_load(server.local_url, flag, mixes, texts, args, code, logs)
            if args.baseline:
                this, old = _brief(runs["member_filter"]), _brief(runs["baseline"])
                turns.append({"gains": _gains(runs, "baseline"), "this": this, "baseline": old})
    result = runs["member_filter"]
    if args.compare_filter:
        gains = _gains(runs, "read_every_user")
        result = {**result, "read_every_user": runs["read_every_user"],
                  "member_filter_over_read_every_user": gains}  # fmt: skip
    if args.baseline:
        result = {**result, "baseline": {"code": args.baseline, **runs["baseline"]},
                  "this_over_baseline": _gains(runs, "baseline")}  # fmt: skip
        if len(turns) > 1:  # the figures above are the last pair's
            result["alternated"] = {
                "pairs": turns,
                "median_gains": {
                    k: float(np.median([t["gains"][k] for t in turns])) for k in turns[0]["gains"]
                },
            }
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "policy": args.policy,
        "workers": args.workers,
        "channels": args.channels,
        "users_in_snapshot": pairs,
        "exposed_users": len(exposed["user_id"].unique()),
        "mix_users": {
            "unexposed_share": args.unexposed_share,
            **{k: len(v) for k, v in mixes.items()},
        },
        "library_index": index,
        **result,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_serve.json").write_text(json.dumps(result, indent=2))
    return 0


def user_mixes(exposed: list[str], args: argparse.Namespace) -> dict[str, list[str]]:
    """The users each load cycles through: ``exposed`` (every user with exposure rows, shuffled)
    and ``mix`` (``--unexposed-share`` of them without: the world's users the logs never tie
    to a rumor, then ids no log has, as a platform's other users)."""
    rng = np.random.default_rng(args.seed)
    exposed = sorted(exposed)
    rng.shuffle(exposed)
    known = set(exposed)
    unexposed = [u for i in range(args.users) if (u := f"u{i:08d}") not in known]
    n_exposed = min(len(exposed), 20_000)
    n_unexposed = round(n_exposed * args.unexposed_share / (1 - args.unexposed_share))
    unexposed += [f"n{i:08d}" for i in range(max(0, n_unexposed - len(unexposed)))]
    rng.shuffle(unexposed)
    mix = exposed[:n_exposed] + unexposed[:n_unexposed]
    rng.shuffle(mix)
    return {"exposed": exposed, "mix": mix}


def serve_and_load(
    redis_url: str, member_filter: str, mixes: dict[str, list[str]], texts: list[str],
    args: argparse.Namespace, code: str = "", logs: Path | None = None,
) -> dict[str, object]:  # fmt: skip
    """Start ``debunk serve`` (``DEBUNK_MEMBER_FILTER`` = ``member_filter``; from the checkout
    ``code`` when given, else this one), run the load against it, stop it. With ``logs`` (a
    folder), the server's log and the collector probe's go there and are counted: store reads
    given up, and with ``--gc-probe`` the long collections."""
    metrics_port = free_port_run(args.workers)
    port = free_port()
    while metrics_port <= port < metrics_port + args.workers:  # a port just freed comes back
        port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DEBUNK_MEMBER_FILTER": member_filter}
    paths = [str(Path(code).resolve())] if code else []  # its own packages first
    if logs is not None:
        paths += serve_logs.prepare(logs, env, args.gc_probe)
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    log_file = open(logs / "server.log", "wb") if logs is not None else None  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--log-level", "WARNING", "serve",
         "--port", str(port), "--feed-daily-cap", "1000000",
         "--workers", str(args.workers), "--metrics-port", str(metrics_port)],
        env=env, cwd=Path(code).resolve() if code else None, stderr=log_file,
    )  # fmt: skip
    store = redis.Redis.from_url(redis_url)
    watch = None
    try:
        wait_for_workers(metrics_port, args.workers)  # each builds its library index first
        if logs is not None and args.gc_probe:
            watch = serve_logs.watch_stalls(redis_url, logs)
        store.execute_command("LATENCY", "RESET")
        side = RedisSide(store)
        got = asyncio.run(run_load(f"127.0.0.1:{port}", mixes, texts, args, ServerCpu(proc.pid)))
        got = {**got, "redis_latency_events": _latency_events(store), "redis_side": side.report()}
    finally:
        if watch is not None:
            watch.kill()
            watch.wait()
        store.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if log_file is not None:
            log_file.close()
    if logs is not None:
        got.update(serve_logs.report(logs, args.gc_probe))
    return got


def _latency_events(store: redis.Redis) -> dict[str, dict[str, int]]:
    """Redis's own record of where it stalled over ``REDIS_LATENCY_MS`` during the load
    (``LATENCY LATEST``: per event, the latest and the worst stall in ms); none when reads
    timed out means Redis itself did not stall."""
    return {
        (e[0].decode() if isinstance(e[0], bytes) else str(e[0])): {
            "latest_ms": int(e[2]),
            "max_ms": int(e[3]),
        }
        for e in store.execute_command("LATENCY", "LATEST")
    }


def _brief(run: dict) -> dict[str, float]:
    """One half's headline figures: the empty RPC's rate, RankFeed over it and RankFeedBatch
    users/s per mix."""
    out = {"empty_unary_per_s": run["empty_unary_per_s"]}
    for mix in ("exposed", "mix"):
        out[f"{mix}_rank_feed_over_empty"] = run[mix]["rank_feed_over_empty"]
        out[f"{mix}_p99_over_empty_p99"] = run[mix]["p99_over_empty_p99"]
        out[f"{mix}_rank_feed_batch_users_per_s"] = run[mix]["rank_feed_batch_users_per_s"]
    if "store_reads_given_up" in run:
        out["store_reads_given_up"] = sum(run["store_reads_given_up"]["by_message"].values())
    side = run.get("redis_side", {}).get("os", {})
    if side:
        out["redis_ran_ms"], out["redis_waited_ms"] = side["ran_ms"], side["waited_ms"]
    if "redis_or_machine_stalls" in run:
        pings = [w for w in run["redis_or_machine_stalls"] if w[1] == "ping"]
        out["redis_pings_over_50_ms"] = len(pings)
    if "long_collections" in run:
        out["collections_over_50_ms"] = len(run["long_collections"]["passes"])
        out["loop_turns_over_100_ms"] = run["long_loop_turns"]["count"]
    return out


def _gains(runs: dict[str, dict], before: str) -> dict[str, float]:
    """RankFeedBatch users/s and RankFeed calls/s of this code with the filter over the run
    ``before``, per mix."""
    new, old = runs["member_filter"], runs[before]
    out = {}
    for mix in ("exposed", "mix"):
        for what in ("rank_feed_batch_users_per_s", "rank_feed_per_s"):
            out[f"{mix}_{what}"] = round(new[mix][what] / max(1, old[mix][what]), 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
