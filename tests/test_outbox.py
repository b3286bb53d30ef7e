"""The notification outbox against a real redis-server: a rumor's spreaders are notified once
per user and rumor across runs and killed runs, within the push cap, honouring dismissals and
holdouts; each notification is a served push event; the export round-trips; the command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
import redis.asyncio

from domain.delivery import DeliveryEvent, day_of, notification_id
from domain.experiments import Experiment, parse_arms
from domain.live import with_status
from feature_store import experiments, keys, live_catalog, outbox
from feature_store.delivery import queue_events
from feature_store.event_writes import EventWriter
from feature_store.snapshot_catalog import load_catalog
from offline.live.export_outbox import OutboxExportError, export_outbox
from offline.live.notify import NotifyError, notify_spreaders
from ranking.policy import FeedRules, ServingPolicy
from ranking.spreaders import Recipient, SpreadRecord, plan_notifications
from tests.fixtures import service
from tests.fixtures.spreaders import world

NOW = int(datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp())
ROWS = [
    ("s1", "r1", "share", 1),
    ("c1", "r1", "comment", 2),
    ("s2", "r1", "share", 3),
    ("v1", "r1", "impression", 1),
    ("k1", "r1", "click", 1),
    ("s1", "r2", "share", 1),
    ("w1", "r3", "share", 1),  # r3 is withdrawn
]


def entries(client: redis.Redis) -> list[dict[str, str]]:
    return [f for _, f in outbox.read_after(client, "0-0", 10_000)]


def test_spreaders_are_notified_once_per_user_and_rumor_across_runs(
    client: redis.Redis, tmp_path: Path
) -> None:
    state = world(client, tmp_path, ROWS)
    first = notify_spreaders(client, state, "r1", "confirmed", NOW)
    assert first["spreaders"] == 3 and first["notified"] == 3 and first["skipped"] == {}
    got = entries(client)
    assert [e["user_id"] for e in got] == ["s1", "c1", "s2"]  # earliest spreader first
    assert {e["debunk_id"] for e in got} == {"d1"}  # the official debunk, not the media one
    assert got[0] == {"notification_id": notification_id("s1", "r1"), "user_id": "s1",
                      "rumor_id": "r1", "debunk_id": "d1", "reason": "confirmed",
                      "ts": str(NOW)}  # fmt: skip
    again = notify_spreaders(client, state, "r1", "verdict_changed", NOW + 60)
    assert again["notified"] == 0 and again["skipped"] == {"already": 3}
    assert len(entries(client)) == 3
    other = notify_spreaders(client, state, "r2", "confirmed", NOW)  # another rumor: its own once
    assert other["notified"] == 1 and entries(client)[-1]["debunk_id"] == "d2"


def test_a_notification_is_a_served_push_event_recorded_once(
    client: redis.Redis, tmp_path: Path, redis_url: str
) -> None:
    state = world(client, tmp_path, ROWS)
    notify_spreaders(client, state, "r1", "confirmed", NOW)
    cap = keys.daily_caps("s1", day_of(NOW))
    assert client.hget(cap, "push") == b"1"
    assert client.hget(keys.delivery("s1"), "srv:d1") == str(NOW).encode()
    events = [f for _, f in client.xrange(keys.EVENTS)]
    assert len(events) == 3
    assert {(e[b"surface"], e[b"event"]) for e in events} == {(b"push", b"served")}
    assert events[0][b"event_id"] == notification_id("s1", "r1").encode()

    async def report_served_again() -> None:  # the push system also reports what it sent
        c = redis.asyncio.Redis.from_url(redis_url)
        nid = notification_id("s1", "r1")
        served = DeliveryEvent("s1", "d1", "r1", "push", "served", NOW, event_id=nid)
        await EventWriter(c).write([served])
        await c.aclose()

    asyncio.run(report_served_again())
    assert client.hget(cap, "push") == b"1" and client.xlen(keys.EVENTS) == 3


def test_a_run_killed_between_batches_notifies_each_user_exactly_once(
    client: redis.Redis, tmp_path: Path
) -> None:
    rows = [(f"u{i:02d}", "r1", "share" if i % 2 else "comment", 1 + i % 5) for i in range(40)]
    state = world(client, tmp_path, rows)
    # The killed run: its first batch of 12 was applied, the rest never was.
    catalog = load_catalog(client, "v1")
    rules = FeedRules(targeted=True, learned_ranker=True, daily_cap=5)
    users = [r[0] for r in rows][:12]
    views = outbox.read_users(client, "v1", users, "r1", NOW)
    recipients = [Recipient(u, n, d, m, rules) for u, (n, d, m) in zip(users, views, strict=True)]
    planned, _ = plan_notifications(catalog.rumors["r1"], catalog, recipients, cap=2,
                                    reason="confirmed", now=NOW)  # fmt: skip
    assert outbox.append_batch(client, planned, 2) == ["notified"] * 12
    rerun = notify_spreaders(client, state, "r1", "confirmed", NOW, batch=7)
    assert rerun["notified"] == 28 and rerun["skipped"] == {"already": 12}
    assert rerun["batches"] == 6
    notified = [e["user_id"] for e in entries(client)]
    assert sorted(notified) == sorted(r[0] for r in rows)  # everyone, nobody twice
    assert all(client.hget(keys.daily_caps(u, day_of(NOW)), "push") == b"1" for u in notified)


def test_the_push_cap_holds_and_a_capped_user_is_reached_by_a_later_run(
    client: redis.Redis, tmp_path: Path
) -> None:
    state = world(client, tmp_path, ROWS)
    client.hset(keys.daily_caps("c1", day_of(NOW)), "push", 2)  # c1 had two pushes today
    one_a_day = ServingPolicy(push_daily_cap=1)
    first = notify_spreaders(client, state, "r1", "confirmed", NOW, policy=ServingPolicy())
    assert first["notified"] == 2 and first["skipped"] == {"capped": 1}
    assert not client.exists(keys.notified("c1", "r1"))
    # s1 spread r2 too: the r1 notification spent a cap of one
    capped = notify_spreaders(client, state, "r2", "confirmed", NOW + 5, policy=one_a_day)
    assert capped["notified"] == 0 and capped["skipped"] == {"capped": 1}
    tomorrow = notify_spreaders(client, state, "r1", "confirmed", NOW + 86_400, policy=one_a_day)
    assert tomorrow["notified"] == 1 and tomorrow["skipped"] == {"already": 2}
    assert [e["user_id"] for e in entries(client)] == ["s1", "s2", "c1"]


def test_the_batch_script_checks_the_cap_itself(client: redis.Redis, tmp_path: Path) -> None:
    world(client, tmp_path, ROWS)
    catalog = load_catalog(client, "v1")
    rules = FeedRules(targeted=True, learned_ranker=True, daily_cap=5)
    views = outbox.read_users(client, "v1", ["s1"], "r1", NOW)
    planned, _ = plan_notifications(catalog.rumors["r1"], catalog,
                                    [Recipient("s1", *views[0], rules)], cap=1,
                                    reason="confirmed", now=NOW)  # fmt: skip
    client.hset(keys.daily_caps("s1", day_of(NOW)), "push", 1)  # spent after the plan was made
    assert outbox.append_batch(client, planned, 1) == ["capped"]
    assert client.xlen(keys.OUTBOX) == 0


def test_dismissals_and_holdouts_are_honoured(client: redis.Redis, tmp_path: Path) -> None:
    state = world(client, tmp_path, ROWS)
    pipe = client.pipeline()
    queue_events(pipe, [DeliveryEvent("s2", "d1", "r1", "feed", "dismiss", NOW - 100)])
    pipe.execute()
    exp = Experiment("x1", "salt", parse_arms("control:0.5,hold:0.5:holdout"), NOW - 10, NOW + 10)
    experiments.save(client, exp)
    held = [u for u in ("s1", "c1") if exp.arm_of(u).name == "hold"]
    done = notify_spreaders(client, state, "r1", "confirmed", NOW)
    expected = {"dismissed": 1, **({"holdout": len(held)} if held else {})}
    assert done["skipped"] == expected and done["notified"] == 2 - len(held)
    got = entries(client)
    assert "s2" not in {e["user_id"] for e in got} and not set(held) & {e["user_id"] for e in got}
    arms = {e[b"user_id"].decode(): e[b"arm"].decode() for _, e in client.xrange(keys.EVENTS)}
    assert all(arms[u] == exp.arm_of(u).name for u in arms)  # served events carry the arm


@pytest.mark.parametrize(
    ("rumor", "reason", "message"),
    [("r9", "confirmed", "unknown rumor"), ("r3", "confirmed", "withdrawn"),
     ("r1 x", "confirmed", "rumor_id may only"), ("r1", "because", "reason must be")],
)  # fmt: skip
def test_bad_input_writes_nothing(
    client: redis.Redis, tmp_path: Path, rumor: str, reason: str, message: str
) -> None:
    state = world(client, tmp_path, ROWS)
    with pytest.raises(NotifyError, match=message):
        notify_spreaders(client, state, rumor, reason, NOW)
    assert not client.exists(keys.OUTBOX, keys.EVENTS, keys.notified("w1", "r3"))


def test_the_live_layer_decides_what_is_confirmed(client: redis.Redis, tmp_path: Path) -> None:
    state = world(client, tmp_path, ROWS)
    r1, r3 = (next(r for r in service.RUMORS if r.rumor_id == i) for i in ("r1", "r3"))
    confirmed = with_status(r3, "confirmed", "2026-11-03T12:00:00Z")
    withdrawn = with_status(r1, "withdrawn", "")
    changes = [
        live_catalog.Change("rumor", r.rumor_id, None, live_catalog.encode(r), None, None)
        for r in (confirmed, withdrawn)
    ]
    live_catalog.apply(client, changes, actor="test", command="rumor confirm")
    assert notify_spreaders(client, state, "r3", "confirmed", NOW)["notified"] == 1  # w1
    with pytest.raises(NotifyError, match="withdrawn"):
        notify_spreaders(client, state, "r1", "confirmed", NOW)
    assert [e["user_id"] for e in entries(client)] == ["w1"]


def test_extra_spreaders_are_notified_without_a_state(client: redis.Redis, tmp_path: Path) -> None:
    service.snapshot(client, "v1", ROWS)
    with pytest.raises(NotifyError, match="no nightly exposure state"):
        notify_spreaders(client, tmp_path / "none", "r1", "confirmed", NOW)
    extra = [SpreadRecord("fresh", "share", NOW), SpreadRecord("viewer", "impression", NOW)]
    done = notify_spreaders(client, tmp_path / "none", "r1", "confirmed", NOW, extra=extra)
    assert done["notified"] == 1 and [e["user_id"] for e in entries(client)] == ["fresh"]


def test_the_export_round_trips_and_keeps_what_the_push_system_has_not_consumed(
    client: redis.Redis, tmp_path: Path
) -> None:
    state = world(client, tmp_path / "state", ROWS)
    out = tmp_path / "outbox"
    client.xgroup_create(keys.OUTBOX, "push", id="0", mkstream=True)
    notify_spreaders(client, state, "r1", "confirmed", NOW)
    in_stream = entries(client)
    read = client.xreadgroup("push", "p1", {keys.OUTBOX: ">"}, count=2)  # 2 read, pending
    summary = export_outbox(client, out)
    assert summary["notifications"] == 3 and summary["files"] == 1
    table = pq.read_table(out / "dt=2026-11-03").sort_by("stream_id")
    assert table.drop_columns(["stream_id", "ts"]).to_pylist() == [
        {k: v for k, v in e.items() if k != "ts"} for e in in_stream
    ]
    assert {int(t.timestamp()) for t in table["ts"].to_pylist()} == {NOW}
    assert client.xlen(keys.OUTBOX) == 3  # the group has not acknowledged anything yet
    client.xack(keys.OUTBOX, "push", *[i for i, _ in read[0][1]])
    client.xreadgroup("push", "p1", {keys.OUTBOX: ">"}, count=10)  # the third, still pending
    again = export_outbox(client, out)
    assert again["notifications"] == 0 and client.xlen(keys.OUTBOX) == 1
    assert pq.read_table(out).num_rows == 3
    client.delete(keys.OUTBOX_EXPORTED)  # the store rolled back behind the folder's ledger
    with pytest.raises(OutboxExportError, match="behind"):
        export_outbox(client, out)
    assert pq.read_table(out).num_rows == 3


def debunk(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    cmd = [sys.executable, "-m", "cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_the_commands(client: redis.Redis, tmp_path: Path, redis_url: str) -> None:
    state = world(client, tmp_path / "state", ROWS)
    bad = debunk("notify", "r9", "--state", str(state), redis_url=redis_url)
    assert bad.returncode == 2 and "unknown rumor" in bad.stderr and not client.exists(keys.OUTBOX)
    done = debunk("notify", "r1", "--state", str(state), "--now", str(NOW), "--extra-users",
                  "x1", redis_url=redis_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["notified"] == 4
    out = tmp_path / "out"
    exported = debunk("export-outbox", "--out", str(out), redis_url=redis_url)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["notifications"] == 4 and pq.read_table(out).num_rows == 4
