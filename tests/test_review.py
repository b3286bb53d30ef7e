"""``debunk items add`` and ``debunk review list|accept|reject`` end to end: new item texts
matched at once against a real redis-server's library (a paraphrase tagged and pinned by a real
gRPC service within a second, a mid-score text queued), decisions that the next nightly keeps,
bad input that applies nothing, and re-runs that change nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from cli import lifecycle
from cli.main import main
from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.review import ReviewEntry, open_queue, review_id
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.live_catalog import read_layer
from offline.nightly import job
from offline.nightly.review_state import drop_pairs, load_decisions
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, snapshot

WITHIN_S = 1.0
PARAPHRASE = "听说喝板蓝根能预防新冠，大家快囤"  # r1's claim in other words: above high
MID = "听说明天要停水"  # near r2's claim: between low and high
T0 = "2026-10-05T08:00:00Z"


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., int]:
    """``debunk ...`` in this process, against the test redis-server, as operator ``alice``."""
    monkeypatch.setenv("REDIS_URL", redis_url)

    def run(*argv: str) -> int:
        return main([*argv, "--actor", "alice", "--state", str(tmp_path / "state")])

    return run


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    """The service at its production poll interval (0.5 s) over the hand-made snapshot."""
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    svc = ServiceThread(settings, poll_interval=0.5).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


@pytest.fixture
def backfills(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The calls of a stand-in backfill module (the real one is h-backfill's)."""
    calls: list[tuple] = []
    fake = types.ModuleType("fake_backfill")
    fake.backfill_tag = lambda data, state, items, rumor, store, now, **kw: calls.append(
        (data, state, items, rumor)
    ) or {"users": 1}  # fmt: skip
    monkeypatch.setitem(sys.modules, "fake_backfill", fake)
    monkeypatch.setattr(lifecycle, "BACKFILL_MODULE", "fake_backfill")
    return calls


def until(check: Callable[[], bool], within: float = WITHIN_S) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails past ``within``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, "not within the deadline"
    return time.monotonic() - start


def jsonl(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as JSON Lines."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def out_json(capsys: pytest.CaptureFixture[str]) -> dict:
    """The JSON the last command printed."""
    return json.loads(capsys.readouterr().out)


def audit(client: redis.Redis) -> list[dict[str, str]]:
    """The audit stream's entries, oldest first."""
    return [
        {k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(keys.LIVE_AUDIT)
    ]


def test_a_paraphrase_is_tagged_and_pinned_within_a_second_and_a_rerun_changes_nothing(
    stub, cli, client: redis.Redis, tmp_path: Path, capsys, backfills
) -> None:
    items = jsonl(tmp_path / "items.jsonl", [
        {"item_id": "i20", "text": PARAPHRASE, "created_at": T0},
        {"item_id": "i21", "text": MID, "created_at": T0},
        {"item_id": "i22", "text": PARAPHRASE, "created_at": T0, "author_type": "official"},
    ])  # fmt: skip

    def comment(item: str) -> str:
        return stub.CommentTop(pb.CommentTopRequest(item_id=item), timeout=5).card.rumor_id

    assert comment("i20") == ""
    data = tmp_path / "data"
    assert cli("items", "add", str(items), "--data", str(data)) == 0
    took = until(lambda: comment("i20") == "r1")
    assert took < WITHIN_S
    out = out_json(capsys)
    assert out["tagged"] == [
        {"item_id": "i20", "rumor_id": "r1", "score": out["tagged"][0]["score"]}
    ]
    assert out["tagged"][0]["score"] >= 0.98
    assert [(q["item_id"], q["rumor_id"], q["source"]) for q in out["queued"]] == [
        ("i21", "r2", "live")
    ]
    assert out["skipped"] == {"official_author": 1} and out["new_items"] == 3
    assert comment("i22") == "" and comment("i21") == ""  # an authority's post is not tagged
    ((source, score),) = read_layer(client).layer.tags["i20"].added.values()
    assert source == "matched" and score == pytest.approx(out["tagged"][0]["score"], abs=1e-4)
    assert backfills == [(data, tmp_path / "state", ["i20"], "r1")]
    kept = pq.read_table(tmp_path / "state" / "live_items" / "items.parquet")
    assert kept["item_id"].to_pylist() == ["i20", "i21", "i22"]
    assert {(e["command"], e["kind"]) for e in audit(client)} == {
        ("items add", "tag"), ("items add", "review"), ("items add", "item")}  # fmt: skip
    # the same file again: nothing changes, nothing is recorded, no backfill
    seq, entries = client.get(keys.LIVE_SEQ), client.xlen(keys.LIVE_AUDIT)
    mtime = (tmp_path / "state" / "live_items" / "items.parquet").stat().st_mtime_ns
    assert cli("items", "add", str(items), "--data", str(data)) == 0
    again = out_json(capsys)
    assert again["changed"] == 0 and again["tagged"] == [] and again["queued"] == []
    assert client.get(keys.LIVE_SEQ) == seq and client.xlen(keys.LIVE_AUDIT) == entries
    assert (tmp_path / "state" / "live_items" / "items.parquet").stat().st_mtime_ns == mtime
    assert len(backfills) == 1


def test_a_queued_text_is_listed_accepted_as_a_tag_and_audited(
    stub, cli, client: redis.Redis, tmp_path: Path, capsys, backfills
) -> None:
    items = jsonl(tmp_path / "items.jsonl", [{"item_id": "i21", "text": MID, "created_at": T0}])
    assert cli("items", "add", str(items)) == 0
    capsys.readouterr()
    assert cli("review", "list", "--json") == 0
    listed = out_json(capsys)
    rid = review_id("i21", "r2")
    assert [(e["review_id"], e["source"], e["text"]) for e in listed["entries"]] == [
        (rid, "live", MID)
    ]
    assert cli("review", "list") == 0
    assert rid in capsys.readouterr().out
    data = tmp_path / "data"
    assert cli("review", "accept", rid, "--data", str(data)) == 0
    accepted = out_json(capsys)
    assert accepted["decision"] == "accepted" and accepted["changed"] == 2
    assert accepted["backfill"] == {"r2": {"users": 1}}
    assert backfills == [(data, tmp_path / "state", ["i21"], "r2")]
    source, score = read_layer(client).layer.tags["i21"].added["r2"]
    assert source == "manual" and 0.86 < score < 0.99
    until(
        lambda: (
            stub.CommentTop(pb.CommentTopRequest(item_id="i21"), timeout=5).card.rumor_id == "r2"
        )
    )
    last = audit(client)[-2:]
    assert [(e["command"], e["kind"], e["actor"]) for e in last] == [
        ("review accept", "tag", "alice"), ("review accept", "review", "alice")]  # fmt: skip
    assert json.loads(last[1]["after"])["decision"] == "accepted"
    assert load_decisions(tmp_path / "state")[rid].decision == "accepted"
    assert client.hlen(keys.LIVE_REVIEW) == 0
    assert cli("review", "list", "--json") == 0 and out_json(capsys)["entries"] == []
    # idempotent; the other decision is refused
    entries = client.xlen(keys.LIVE_AUDIT)
    assert cli("review", "accept", rid) == 0 and out_json(capsys)["changed"] == 0
    assert cli("review", "reject", rid) == 2
    assert client.xlen(keys.LIVE_AUDIT) == entries and len(backfills) == 1


def test_a_rejected_pair_is_not_queued_again_and_live_texts_reach_the_nightly(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings, cli, capsys
) -> None:
    state = tmp_path / "state"
    job.run_nightly(small_world, date(2026, 10, 5), state, settings, train=False)
    capsys.readouterr()
    assert cli("review", "list", "--json") == 0
    listed = out_json(capsys)["entries"]
    assert listed and {e["source"] for e in listed} == {"nightly"}
    first = listed[0]
    assert [e["score"] for e in listed] == sorted((e["score"] for e in listed), reverse=True)
    assert cli("review", "reject", first["review_id"], "--reason", "not the same claim") == 0
    assert out_json(capsys)["changed"] == 1
    (entry,) = audit(client)
    assert entry["command"] == "review reject" and entry["note"] == "not the same claim"
    assert client.get(keys.LIVE_SEQ) is None  # the service has nothing to reload
    rumors = [json.loads(line) for line in (small_world / "rumors.jsonl").read_text().splitlines()]
    rumor = next(r for r in rumors if r["status"] == "confirmed")
    items = jsonl(tmp_path / "items.jsonl", [{"item_id": "i-live-9", "text": rumor["claim"],
                                              "created_at": T0}])  # fmt: skip
    assert cli("items", "add", str(items)) == 0
    assert [t["rumor_id"] for t in out_json(capsys)["tagged"]] == [rumor["rumor_id"]]
    summary = job.run_nightly(small_world, date(2026, 10, 6), state, settings, train=False)
    queue = pq.read_table(state / "match" / "review_queue.parquet")
    pairs = set(zip(queue["item_id"].to_pylist(), queue["rumor_id"].to_pylist(), strict=True))
    assert (first["item_id"], first["rumor_id"]) not in pairs and len(pairs) == len(listed) - 1
    matched = pq.read_table(state / "match" / "matched_tags.parquet")
    assert ("i-live-9", rumor["rumor_id"]) in set(
        zip(matched["item_id"].to_pylist(), matched["rumor_id"].to_pylist(), strict=True)
    )  # the night matched the live text itself, the same tag
    assert summary["match"]["texts"] == pq.read_metadata(small_world / "items.parquet").num_rows + 1
    version = client.get(keys.CURRENT).decode()
    assert client.hget(keys.items(version), "i-live-9") == rumor["rumor_id"].encode()
    assert cli("review", "list", "--json") == 0
    assert first["review_id"] not in {e["review_id"] for e in out_json(capsys)["entries"]}


def test_bad_input_exits_2_and_applies_nothing(cli, client: redis.Redis, tmp_path: Path) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    good = {"item_id": "i30", "text": PARAPHRASE, "created_at": T0}
    bad_files = {
        "not-json.jsonl": json.dumps(good) + "\n{not json\n",
        "bad-id.jsonl": json.dumps({**good, "item_id": "i 31"}) + "\n",
        "no-time.jsonl": json.dumps(good)
        + "\n"
        + json.dumps({"item_id": "i32", "text": "x"})
        + "\n",
        "bad-time.jsonl": json.dumps({**good, "created_at": "yesterday"}) + "\n",
        "no-text.jsonl": json.dumps({**good, "text": "  "}) + "\n",
        "twice.jsonl": json.dumps(good) + "\n" + json.dumps(good) + "\n",
        "empty.jsonl": "",
        "items.txt": json.dumps(good) + "\n",
        "broken.parquet": "PAR1 not really",
        "short.csv": "item_id,text\ni30,hello\n",
    }
    for name, body in bad_files.items():
        (tmp_path / name).write_text(body)
        assert cli("items", "add", str(tmp_path / name)) == 2, name
    assert cli("items", "add", str(tmp_path / "missing.jsonl")) == 2
    assert cli("review", "accept", "rv-000000000000") == 2
    assert cli("review", "reject", "bad id{x}") == 2
    assert client.get(keys.LIVE_SEQ) is None and client.xlen(keys.LIVE_AUDIT) == 0
    assert client.hlen(keys.LIVE_REVIEW) == 0 and read_layer(client).layer.empty
    assert not (tmp_path / "state").exists()
    # an item id kept before with another text: refused whole
    assert cli("items", "add", str(jsonl(tmp_path / "a.jsonl", [good]))) == 0
    seq, entries = client.get(keys.LIVE_SEQ), client.xlen(keys.LIVE_AUDIT)
    other = [{**good, "item_id": "i33", "text": MID}, {**good, "text": MID}]
    assert cli("items", "add", str(jsonl(tmp_path / "b.jsonl", other))) == 2
    assert client.get(keys.LIVE_SEQ) == seq and client.xlen(keys.LIVE_AUDIT) == entries
    assert client.hlen(keys.LIVE_REVIEW) == 0


def test_csv_and_parquet_files_and_exit_2_from_a_real_process(
    cli, client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    snapshot(client, "v1", [])
    (tmp_path / "items.csv").write_text(f"item_id,text,created_at\ni40,{PARAPHRASE},{T0}\n")
    assert cli("items", "add", str(tmp_path / "items.csv")) == 0
    table = pa.table({"item_id": ["i41"], "text": [MID], "created_at": [T0]})
    pq.write_table(table, tmp_path / "items.parquet")
    assert cli("items", "add", str(tmp_path / "items.parquet")) == 0
    layer = read_layer(client).layer
    assert set(layer.tags) == {"i40"} and client.hexists(keys.LIVE_REVIEW, review_id("i41", "r2"))
    debunk = Path(sys.executable).with_name("debunk")
    env = {**os.environ, "REDIS_URL": redis_url}
    for argv in (["items", "add", str(tmp_path / "nope.csv")], ["review", "accept", "rv-1"]):
        proc = subprocess.run([str(debunk), *argv, "--state", str(tmp_path / "state")], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"debunk {argv[0]} {argv[1]}: ")


def test_the_queue_rule_on_plain_records() -> None:
    assert review_id("i1", "r1") == review_id("i1", "r1") != review_id("i1", "r2")
    assert review_id("i1", "r1").startswith("rv-") and len(review_id("i1", "r1")) == 15
    live = [ReviewEntry("i1", "r1", 0.9, "c", "t"), ReviewEntry("i2", "r1", 0.95, "c", "t")]
    nightly = [ReviewEntry("i1", "r1", 0.92, "c", "t", "nightly"),
               ReviewEntry("i3", "r1", 0.9, "c", "t", "nightly")]  # fmt: skip
    queue = open_queue(nightly, live, decided={review_id("i2", "r1")})
    assert [(e.item_id, e.source) for e in queue] == [("i1", "nightly"), ("i3", "nightly")]
    tied = open_queue(
        [], [ReviewEntry("b", "r", 0.9, "c", "t"), ReviewEntry("a", "r", 0.9, "c", "t")], ()
    )
    assert [e.review_id for e in tied] == sorted(e.review_id for e in tied)
    table = pa.table({"item_id": ["i1", "i1", "i2"], "rumor_id": ["r1", "r2", "r1"]})
    assert drop_pairs(table, {("i1", "r2")}).to_pylist() == [
        {"item_id": "i1", "rumor_id": "r1"}, {"item_id": "i2", "rumor_id": "r1"}]  # fmt: skip


def test_the_queue_script_runs_on_a_cluster(cluster_settings: RedisSettings) -> None:
    from feature_store.review_queue import QueueChange, change_queue, queued, read_queue

    c = cluster_settings.sync_client()
    try:
        for key in (keys.LIVE_REVIEW, keys.LIVE_AUDIT, keys.LIVE_SEQ):
            c.delete(key)
        entry = ReviewEntry("i1", "r2", 0.93, "明天全市停水", MID)
        assert change_queue(c, [queued(entry)], actor="alice", command="items add") == 1
        assert change_queue(c, [queued(entry)], actor="alice", command="items add") == 0
        assert read_queue(c) == {entry.review_id: entry}
        gone = QueueChange("review", entry.review_id, "del", None, entry.to_dict(), None)
        assert change_queue(c, [gone], actor="alice", command="review reject") == 1
        assert read_queue(c) == {} and c.xlen(keys.LIVE_AUDIT) == 2
    finally:
        c.close()
