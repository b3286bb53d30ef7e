"""The reach report over what the system actually served: tags kept from the live layer, live
changes from the real lifecycle commands' exported audit, the nightly's matched tags; and
re-pushed updates (DebunkEvent.update) from RecordEvents through the event stream and export into
the report, never doubling reach. Old event files without ``update`` still read."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from cli.main import main
from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment, parse_arms
from domain.live import TagChange
from feature_store import keys
from feature_store.connection import RedisSettings
from offline.io.contracts import EVENT_SCHEMA, EVENT_UPDATE, EXPOSURE_SCHEMA
from offline.nightly import live_fold
from offline.nightly.export_events import EVENT_SCHEMA as EXPORT_SCHEMA
from offline.nightly.export_events import export_events
from offline.report.reach import reach_report
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, event, snapshot

TODAY = datetime.now(UTC).date()
D1, D2 = TODAY - timedelta(days=1), TODAY
EXP = Experiment("x1", "s", parse_arms("control:0.5,treatment:0.5"), 0.0, 4e9)


def t(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _rumor(rid: str, status: str) -> dict:
    return {"rumor_id": rid, "claim": f"claim {rid} words apart", "category": "other",
            "severity": 3, "keywords": [], "verdict": "false", "status": status,
            "confirmed_at": "2026-09-30T00:00:00Z"}  # fmt: skip


def _parquet(folder: Path, rows: list[tuple], schema: pa.Schema) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cols = list(zip(*rows, strict=True))
    table = pa.table(dict(zip(schema.names, cols, strict=True)), schema=schema)
    pq.write_table(table, folder / "part-0.parquet")


def ev(user: str, kind: str, when: datetime, rumor: str = "r1") -> tuple:
    return (user, f"d{rumor[1:]}", rumor, "feed", kind, when, "x1", EXP.arm_of(user).name)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """r1, r3 confirmed and r2 withdrawn in the input; i1 -> r1, i2 -> r2, i4 -> r3 tagged.
    One exposed user per tag source; D1's events in the old layout (no ``update``)."""
    root = tmp_path / "w"
    root.mkdir()
    rumors = [_rumor("r1", "confirmed"), _rumor("r2", "withdrawn"), _rumor("r3", "confirmed")]
    (root / "rumors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rumors))
    debunks = [{"debunk_id": f"d{r[1:]}", "rumor_ids": [r], "title": "t", "url": "https://x.org",
                "publisher": "p", "authority": "official", "format": "card", "language": "en",
                "published_at": "2026-09-30T00:00:00Z"} for r in ("r1", "r2", "r3")]  # fmt: skip
    (root / "debunks.jsonl").write_text("".join(json.dumps(d) + "\n" for d in debunks))
    pq.write_table(pa.table({"item_id": ["i1", "i2", "i4"], "rumor_id": ["r1", "r2", "r3"]}),
                   root / "tagged_items.parquet")  # fmt: skip
    exposures = [
        ("u_in", "i1", t(D1, 8), "feed", "impression"),  # input tag
        ("u_ov", "i3", t(D1, 8), "feed", "impression"),  # tagged by a kept override
        ("u_live", "i5", t(D1, 8), "feed", "impression"),  # tagged live since the last fold
        ("u_w", "i4", t(D1, 8), "feed", "impression"),  # r3: withdrawn live
        ("u_m", "i6", t(D2, 8), "feed", "impression"),  # the nightly's matcher
    ]
    _parquet(root / "exposures" / f"dt={D1}", exposures, EXPOSURE_SCHEMA)
    old = [ev("u_ov", "served", t(D1, 9)), ev("u_ov", "impression", t(D1, 9)),
           ev("u_w", "impression", t(D1, 9), "r3")]  # fmt: skip
    _parquet(root / "debunk_events" / f"dt={D1}", old, EVENT_SCHEMA)
    new = [
        (*ev("u_live", "served", t(D2, 1)), False),
        (*ev("u_live", "impression", t(D2, 1)), False),
        (*ev("u_live", "served", t(D2, 5)), True),  # the revised card, re-pushed
        (*ev("u_live", "impression", t(D2, 5)), True),
    ]
    _parquet(root / "debunk_events" / f"dt={D2}", new, EVENT_SCHEMA.append(EVENT_UPDATE))
    state = tmp_path / "state"
    kept = live_fold.empty_fold()
    kept.tags["i3"] = TagChange().tag("r1", "manual", 1.0)
    live_fold.save_overrides(state, kept)
    _parquet(state / "match", [("i6", "r1", "matched", 0.93)],
             pa.schema([("item_id", pa.string()), ("rumor_id", pa.string()),
                        ("source", pa.string()), ("score", pa.float64())]))  # fmt: skip
    (state / "match" / "part-0.parquet").rename(state / "match" / "matched_tags.parquet")
    return root


@pytest.fixture
def cli(redis_url: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Callable:
    """``debunk ...`` in this process against the test redis-server (emptied first)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    return lambda *argv: main(list(argv))


def test_exposure_follows_overrides_live_changes_and_matched_tags(world: Path, cli) -> None:
    state, audit = world.parent / "state", world.parent / "audit"
    assert cli("tag", "add", "i5", "r1", "--data", str(world), "--actor", "alice") == 0
    assert cli("rumor", "withdraw", "r3", "--reason", "wrong", "--data", str(world),
               "--actor", "alice") == 0  # fmt: skip
    assert cli("export-audit", "--out", str(audit)) == 0

    before = reach_report(world, EXP, D1, D2, n_boot=0, progress=False)
    assert sorted(before.outcomes.pairs["user_id"].to_pylist()) == ["u_in", "u_w"]

    # a day of attribution: the audit entries made just now fall inside even past midnight
    report = reach_report(world, EXP, D1, D2, state_dir=state, audit=audit, attribution_days=1,
                          n_boot=0, progress=False)  # fmt: skip
    pairs = {r["user_id"]: r for r in report.outcomes.pairs.to_pylist()}
    assert sorted(pairs) == ["u_in", "u_live", "u_m", "u_ov"]  # u_w's rumor withdrawn live
    assert pairs["u_ov"]["reached"] and pairs["u_live"]["reached"]
    assert not pairs["u_in"]["reached"] and not pairs["u_m"]["reached"]
    scope = report.summary["exposure_scope"]
    assert scope["tags"] == {"input": 1, "overrides": 1, "live": 1, "matched": 1}
    assert scope["confirmed_rumors"] == 1 and scope["live_rumor_changes"] == 1
    assert scope["audit_entries_applied"] == 2

    # the re-push: one pair reached once, two impressions, and counted under updates
    assert pairs["u_live"]["impressions"] == 2 and pairs["u_live"]["debunked_ts"] == t(D2, 1)
    arms = report.arms.set_index("arm")
    assert arms["reached_pairs"].sum() == 2
    arm = EXP.arm_of("u_live").name
    other = next(a.name for a in EXP.arms if a.name != arm)
    updates = report.summary["updates"]
    assert updates[arm] == {"updates_served": 1, "updates_impressions": 1, "updates_seen": 1}
    assert updates[other] == {"updates_served": 0, "updates_impressions": 0, "updates_seen": 0}
    out = report.write(world.parent / "report")
    assert json.loads((out / "summary.json").read_text())["exposure_scope"]["tags"]["live"] == 1


def test_live_changes_after_the_window_do_not_count(world: Path, cli) -> None:
    audit = world.parent / "audit"
    assert cli("tag", "add", "i5", "r1", "--data", str(world), "--actor", "alice") == 0
    assert cli("export-audit", "--out", str(audit)) == 0
    past = reach_report(world, EXP, D1 - timedelta(days=1), D1 - timedelta(days=1),
                        audit=audit, n_boot=0, progress=False)  # fmt: skip
    assert past.summary["exposure_scope"]["audit_entries_applied"] == 0


def test_a_missing_state_or_audit_folder_is_a_clear_error(world: Path) -> None:
    with pytest.raises(ValueError, match="--state .*no such folder"):
        reach_report(world, EXP, D1, D2, state_dir=world / "nope", n_boot=0, progress=False)
    code = main(["report", "--experiment", "x1", "--config", str(_config(world)),
                 "--from", str(D1), "--to", str(D2), "--data", str(world), "--audit",
                 str(world / "nope"), "--out", str(world.parent / "r")])  # fmt: skip
    assert code != 0 and not (world.parent / "r").exists()


def _config(world: Path) -> Path:
    path = world / "experiment.json"
    path.write_text(EXP.to_json())
    return path


def test_record_events_carries_update_into_the_exported_events(
    client: redis.Redis, settings: RedisSettings, tmp_path: Path
) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    svc = ServiceThread(settings, poll_interval=0.5).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            now = int(time.time())
            sent = [event("u1", "d1", pb.EVENT_TYPE_SERVED, ts=now - 5),
                    event("u1", "d1", pb.EVENT_TYPE_SERVED, ts=now, update=True)]  # fmt: skip
            stub.RecordEvents(pb.RecordEventsRequest(events=sent), timeout=5)
    finally:
        svc.stop()
    export_events(client, tmp_path / "ev")
    (day,) = list((tmp_path / "ev").glob("dt=*"))
    (f,) = list(day.glob("*.parquet"))
    table = pq.read_table(f)
    assert table.sort_by("ts")["update"].to_pylist() == [False, True]


def test_an_old_exported_file_without_update_is_extended_not_broken(
    client: redis.Redis, tmp_path: Path
) -> None:
    from domain.delivery import DeliveryEvent
    from feature_store import events as stream

    pipe = client.pipeline()
    ts = 1_790_000_000
    stream.queue_append(pipe, [DeliveryEvent("u2", "d1", "r1", "feed", "served", ts, update=True)])
    pipe.execute()
    first = client.xrange(keys.EVENTS)[0][0].decode()
    day = datetime.fromtimestamp(ts, UTC).date()
    out = tmp_path / "ev"
    f = out / f"dt={day}" / f"events-{first.replace('-', '_')}.parquet"
    f.parent.mkdir(parents=True)
    old = EXPORT_SCHEMA.remove(EXPORT_SCHEMA.get_field_index("update"))  # before the column
    row = ["u1", "d1", "r1", "feed", "served", datetime.fromtimestamp(ts, UTC), "", "", "1-0", ""]
    pq.write_table(pa.table({n: [v] for n, v in zip(old.names, row, strict=True)}, schema=old), f)
    export_events(client, out)  # a killed earlier drain left that file: it is extended
    table = pq.read_table(f).sort_by("user_id")
    assert table["user_id"].to_pylist() == ["u1", "u2"]
    assert table["update"].to_pylist() == [False, True]
