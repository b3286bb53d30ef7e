"""``make demo``: a small world, the nightly job, the service on the embedded Redis, a feed server's
calls under a live experiment, a readable table of what each user got and why, and the reach
report of the experiment the world ran."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import grpc
import pyarrow.compute as pc
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment, parse_arms
from domain.vocab import ACTIONS
from feature_store import experiments
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from offline.nightly.job import run_nightly
from offline.report import formatting
from offline.report.reach import reach_report
from offline.synth.world import PlantedExperiment, synthesize

PLANTED = PlantedExperiment(
    "demo-ab", "control:0.45,treatment:0.45,holdout:0.1:holdout", {"treatment": 0.2}
)
LIVE_ARMS = "rules:0.5:rules,learned:0.5:model"


def wait_until_serving(channel: grpc.Channel, timeout: float = 60.0) -> None:
    """Poll the standard health check until the service reports SERVING."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the service did not become SERVING in time")


def pick_users(state_path: Path, users: int, withdrawn: set[str]) -> list[tuple[str, str]]:
    """A few exposed users with different stories, and two who never saw a rumor."""
    state = pq.read_table(state_path)
    picks: list[tuple[str, str]] = []
    shared = state.filter(pc.equal(state["strongest_action"], "share"))
    if shared.num_rows:
        picks.append((shared["user_id"][0].as_py(), "shared a rumor"))
    counts = state.group_by("user_id").aggregate([("rumor_id", "count")])
    multi = counts.filter(pc.greater(counts["rumor_id_count"], 2))
    if multi.num_rows:
        picks.append((multi["user_id"][0].as_py(), "saw several rumors"))
    seen = pc.equal(state["strongest_action"], "impression")
    if pc.any(seen).as_py():
        picks.append((state.filter(seen)["user_id"][-1].as_py(), "only scrolled past one"))
    if withdrawn:
        only = state.filter(pc.is_in(state["rumor_id"], pc.cast(list(withdrawn), "string")))
        if only.num_rows:
            picks.append((only["user_id"][0].as_py(), "saw a rumor later withdrawn"))
    exposed = set(state["user_id"].to_pylist())
    never = [f"u{i:08d}" for i in range(users) if f"u{i:08d}" not in exposed][:2]
    picks += [(u, "never exposed") for u in never]
    return picks


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


def print_table(rows: list[tuple[str, str, pb.RankFeedResponse]]) -> None:
    print(f"\n{'user':<10} {'story':<28} {'#':>2}  {'rumor':<8} {pad('debunk by', 34)} why")
    print("-" * 120)
    for user, story, reply in rows:
        if reply.arm:
            story = f"{story} [{reply.arm}]"
        if not reply.cards:
            print(f"{user:<10} {story:<28} {'-':>2}  (no cards)")
        for i, card in enumerate(reply.cards, 1):
            head = f"{user:<10} {story:<28}" if i == 1 else " " * 39
            who = pad(f"{card.publisher} ({card.authority})", 34)
            print(f"{head} {i:>2}  {card.rumor_id:<8} {who} {card.reason.text}")
            print(f"{'':<43}claim: {card.claim[:40]}  score={card.score:.3f}")
    print()


def run_demo(workdir: Path, *, users: int, days: int, seed: int) -> int:
    """Run everything end to end and shut it all down again."""
    if workdir.exists():
        shutil.rmtree(workdir)
    world = workdir / "world"
    t0 = time.perf_counter()
    start = date.today() - timedelta(days=days)  # the last day is yesterday: recency matters
    summary = synthesize(world, users=users, days=days, seed=seed, start=start, experiment=PLANTED)
    print(
        f"[1/5] synthetic world: {summary['exposure_rows']:,} exposure rows, "
        f"{summary['rumors']} rumors, {summary['debunks']} debunks "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    run_date = start + timedelta(days=days - 1)
    with EmbeddedRedis(workdir / "redis") as server:
        settings = RedisSettings.from_env(server.url)
        night = run_nightly(world, run_date, workdir / "state", settings)
        print(
            f"[2/5] nightly {run_date}: {night['state']['join']['rows_read']:,} rows scanned, "
            f"{night['state']['pairs']:,} (user, rumor) pairs -> snapshot "
            f"{night['snapshot']['version']} ({night['elapsed_s']}s)"
        )
        start_live_experiment(settings)
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "DEBUNK_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port)], env=env
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                wait_until_serving(channel)
                print(f"[3/5] service SERVING on 127.0.0.1:{port}")
                stub = pb_grpc.DebunkServiceStub(channel)
                withdrawn = _withdrawn(world)
                rows = []
                for user, story in pick_users(
                    workdir / "state" / "current" / "exposures.parquet", users, withdrawn
                ):
                    rows.append((user, story, labelled_feed(stub, user)))
                print(f"[4/5] RankFeed(limit=3), as a feed server calls it (live experiment "
                      f"demo-live: {LIVE_ARMS}):")  # fmt: skip
                print_table(rows)
                show_pinned(stub, world)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    show_report(world, start, run_date, workdir / "report")
    print(f"done in {time.perf_counter() - t0:.1f}s; actions, weakest first: {', '.join(ACTIONS)}")
    return 0


def start_live_experiment(settings: RedisSettings) -> None:
    """An experiment running now, so that feed answers carry arms."""
    now = time.time()
    exp = Experiment("demo-live", "demo-live", parse_arms(LIVE_ARMS), now - 1, now + 3600)
    client = settings.sync_client()
    try:
        experiments.save(client, exp)
    finally:
        client.close()


def labelled_feed(stub: pb_grpc.DebunkServiceStub, user: str) -> pb.RankFeedResponse:
    """RankFeed, retried until the service has loaded the experiment (it polls the store)."""
    deadline = time.monotonic() + 10
    while True:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=3), timeout=2)
        if reply.experiment or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def show_report(world: Path, start: date, end: date, out: Path) -> None:
    """The reach report of the experiment the synthetic world ran (planted: treatment +20%)."""
    report = reach_report(world, world / "experiment.json", start, end, n_boot=100)
    report.write(out)
    print(f"[5/5] reach report of {report.experiment.name} ({start} .. {end}), "
          f"SRM p = {report.srm['p_value']:.2f}:")  # fmt: skip
    for row in report.arms.itertuples():
        print(f"  {row.arm:<10} exposed users {row.exposed_users:>6,}  reached "
              f"{row.user_reach:6.1%} [{row.user_reach_lo:.1%}, {row.user_reach_hi:.1%}]  "
              f"median {formatting.hours(row.hours_to_debunk_p50):>6} to the debunk")  # fmt: skip
    lift = report.comparisons.set_index(["arm", "metric"])
    t = lift.loc[("treatment", "pair_reach")]
    p = formatting.p_value(t.p_value)
    print(f"  treatment vs control: pair reach {t.rel_lift:+.1%} [{t.rel_lift_lo:+.1%}, "
          f"{t.rel_lift_hi:+.1%}], {p} (planted +20% serving)")  # fmt: skip
    print(f"  {report.headline}")
    print(f"  tables and HTML: {out}/report.html\n")


def show_pinned(stub: pb_grpc.DebunkServiceStub, world: Path) -> None:
    """What a search server and a messaging server get for rumor-bearing content."""
    from offline.nightly.match import load_library

    entry = load_library(world)[0]
    query = " ".join(entry.keywords) or entry.claim
    for q in (query, "周末去哪里吃火锅"):
        reply = stub.SearchTop(pb.SearchTopRequest(query=q), timeout=2)
        got = ", ".join(f"{c.rumor_id} {c.publisher} ({c.score:.2f})" for c in reply.cards)
        print(f"SearchTop({q!r}) -> {got or 'nothing'}")
    noisy = f"//@老王: 转给大家！{entry.variants[0] if entry.variants else entry.claim} [泪]"
    reply = stub.GroupWarnings(
        pb.GroupWarningsRequest(
            group_id="family", member_ids=["u00000001", "u00000002"],
            messages=[pb.GroupMessage(message_id="m1", text=noisy, sender_id="u00000003")],
        ),
        timeout=2,
    )  # fmt: skip
    for w in reply.warnings:
        print(
            f"GroupWarnings: message {w.message_id} ({w.matched_by}, {w.match_score:.2f}) -> "
            f"{w.card.rumor_id} {w.card.title}; exposed members: {list(w.exposed_member_ids)}"
        )
    print()


def _withdrawn(world: Path) -> set[str]:
    from offline.io.catalog import load_rumors

    return {r.rumor_id for r in load_rumors(world / "rumors.jsonl") if not r.confirmed}
