"""The live catalog layer end to end: lifecycle commands (``debunk rumor|tag|debunks``) change a
real redis-server, a real gRPC service on loopback follows within a second on every surface,
corrected cards are re-pushed once, and the nightly folds the layer in without losing a change
or applying one twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import grpc
import pyarrow.parquet as pq
import pytest
import redis

from cli.main import main
from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.live import LiveLayer, TagChange, effective_catalog, item_rumors
from domain.records import Catalog, Rumor
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.live_catalog import read_layer
from offline.nightly import job
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import DEBUNKS, RUMORS, SERVING, event, snapshot

WITHIN_S = 1.0


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
    snapshot(client, "v1", [("u1", "r1", "click", 2), ("u1", "r2", "share", 1)])
    svc = ServiceThread(settings, poll_interval=0.5).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def surfaces(stub: pb_grpc.DebunkServiceStub) -> dict[str, set[str]]:
    """The rumors each surface pins or ranks for u1 (alone and in a batch), item i1 and r1's
    claim (searched, and said in a group beside a message carrying i1)."""
    feed = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=10), timeout=5)
    batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=["u2", "u1"], limit=10), timeout=5)
    comment = stub.CommentTop(pb.CommentTopRequest(item_id="i1"), timeout=5)
    search = stub.SearchTop(pb.SearchTopRequest(query=RUMORS[0].claim), timeout=5)
    group = stub.GroupWarnings(
        pb.GroupWarningsRequest(
            group_id="g1", member_ids=["u1"],
            messages=[pb.GroupMessage(message_id="m1", item_id="i1"),
                      pb.GroupMessage(message_id="m2", text=RUMORS[0].claim)],
        ), timeout=5,
    )  # fmt: skip
    return {
        "feed": {c.rumor_id for c in feed.cards},
        "batch": {c.rumor_id for c in batch.feeds[1].cards},
        "comment": {comment.card.rumor_id} - {""},
        "search": {c.rumor_id for c in search.cards},
        "group": {w.card.rumor_id for w in group.warnings},
    }


def until(check: Callable[[], bool], within: float = WITHIN_S) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails past ``within``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, "not within the deadline"
    return time.monotonic() - start


def test_a_withdrawn_rumor_leaves_every_surface_within_a_second(stub, cli, client) -> None:
    before = surfaces(stub)
    assert all("r1" in found for found in before.values()), before
    assert cli("rumor", "withdraw", "r1", "--reason", "verdict overturned") == 0
    took = until(lambda: not any("r1" in found for found in surfaces(stub).values()))
    assert took < WITHIN_S
    audit = client.xrange(keys.LIVE_AUDIT)
    assert len(audit) == 1
    entry = {k.decode(): v.decode() for k, v in audit[0][1].items()}
    assert entry["actor"] == "alice" and entry["command"] == "rumor withdraw"
    assert entry["note"] == "verdict overturned" and entry["id"] == "r1"
    assert json.loads(entry["before"])["status"] == "confirmed"
    assert json.loads(entry["after"])["status"] == "withdrawn"
    # idempotent: the same command again changes nothing and records nothing
    seq = int(client.get(keys.LIVE_SEQ))
    assert cli("rumor", "withdraw", "r1") == 0
    assert int(client.get(keys.LIVE_SEQ)) == seq and client.xlen(keys.LIVE_AUDIT) == 1
    # confirmed again: back everywhere
    assert cli("rumor", "confirm", "r1") == 0
    until(lambda: all("r1" in found for found in surfaces(stub).values()))


def test_no_card_while_the_new_index_is_built(stub, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.library import LibraryMatchers

    real, building = LibraryMatchers.prepare_live, []

    async def slow(self, version, catalog):  # the index over the new library takes 3 s
        building.append(version)
        await asyncio.sleep(3.0)
        await real(self, version, catalog)

    monkeypatch.setattr(LibraryMatchers, "prepare_live", slow)
    query = pb.SearchTopRequest(query=RUMORS[0].claim)
    assert [c.rumor_id for c in stub.SearchTop(query, timeout=5).cards] == ["r1"]
    assert cli("rumor", "withdraw", "r1") == 0
    until(lambda: building != [])  # the rebuild started: the old index still answers
    until(lambda: stub.SearchTop(query, timeout=5).cards == [])
    assert not any("r1" in found for found in surfaces(stub).values())


def test_a_concurrent_change_is_refused_whole(client) -> None:
    from feature_store.live_catalog import LiveConflict
    from feature_store.live_changes import LiveEditor

    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    slow, fast = LiveEditor(client, "alice"), LiveEditor(client, "bob")
    fast.set_status("r1", "withdrawn")
    with pytest.raises(LiveConflict, match="r1"):
        slow.update_rumor("r1", {"severity": "2"})
    assert read_layer(client).layer.rumors["r1"].severity == 4
    assert client.xlen(keys.LIVE_AUDIT) == 1


def test_the_command_exits_2_naming_the_unknown_id(redis_url: str) -> None:
    debunk = Path(sys.executable).with_name("debunk")
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.run([str(debunk), "rumor", "withdraw", "no-such-rumor"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "no rumor 'no-such-rumor'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_new_rumor_with_its_debunk_and_tag_is_pinned_at_once(stub, cli, tmp_path: Path) -> None:
    rumors = tmp_path / "new.jsonl"
    claim = "自来水里加了避孕药"
    rumor = {"rumor_id": "r9", "claim": claim, "severity": 3, "verdict": "false"}
    rumors.write_text(json.dumps(rumor, ensure_ascii=False) + "\n")
    debunks = tmp_path / "debunks.jsonl"
    debunk = {"debunk_id": "d9", "rumor_ids": ["r9"], "title": "辟谣：自来水",
              "url": "https://x/d9", "publisher": "水务局", "authority": "official"}  # fmt: skip
    debunks.write_text(json.dumps(debunk, ensure_ascii=False) + "\n")
    assert cli("rumor", "add", str(rumors)) == 0
    assert cli("debunks", "import", str(debunks)) == 0
    assert cli("tag", "add", "i9", "r9") == 0

    def comment() -> str:
        return stub.CommentTop(pb.CommentTopRequest(item_id="i9"), timeout=5).card.debunk_id

    until(lambda: comment() == "d9")
    # the matcher index is rebuilt off the request path with the new claim (a few seconds at most)
    until(lambda: [c.rumor_id for c in stub.SearchTop(
        pb.SearchTopRequest(query=claim), timeout=5).cards] == ["r9"], within=10.0)  # fmt: skip
    assert cli("tag", "remove", "i9", "r9") == 0
    until(lambda: comment() == "")


def test_a_changed_verdict_re_pushes_the_corrected_card_once(stub, cli) -> None:
    old = int(time.time()) - 100
    seen = [event("u1", d, pb.EVENT_TYPE_IMPRESSION, ts=old) for d in ("d1", "d1m")]
    stub.RecordEvents(pb.RecordEventsRequest(events=seen), timeout=5)

    def r1_cards() -> list[pb.DebunkCard]:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=10), timeout=5)
        return [c for c in reply.cards if c.rumor_id == "r1"]

    assert r1_cards() == []  # both debunks seen
    assert cli("rumor", "update", "r1", "--verdict", "misleading") == 0
    until(lambda: len(r1_cards()) == 1)
    (card,) = r1_cards()
    assert card.update and card.reason.updated and card.verdict == "misleading"
    assert card.debunk_id == "d1" and card.reason.text.startswith("updated")
    served = [event("u1", "d1", pb.EVENT_TYPE_SERVED), event("u1", "d1", pb.EVENT_TYPE_IMPRESSION)]
    stub.RecordEvents(pb.RecordEventsRequest(events=served), timeout=5)
    assert r1_cards() == []  # once per revision
    assert cli("rumor", "update", "r1", "--severity", "5") == 0  # not a verdict: no re-push
    until(lambda: stub.SearchTop(pb.SearchTopRequest(query=RUMORS[0].claim), timeout=5)
          .cards[0].verdict == "misleading")  # fmt: skip
    assert r1_cards() == []


def test_bad_input_applies_nothing(cli, client, tmp_path: Path) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    assert cli("rumor", "confirm", "nope") == 2
    assert cli("rumor", "withdraw", "bad id{x}") == 2
    assert cli("rumor", "update", "r1", "--verdict", "true-ish") == 2
    assert cli("rumor", "update", "r1", "--severity", "9") == 2
    assert cli("tag", "add", "i1", "nope") == 2
    assert cli("tag", "add", "bad item", "r1") == 2
    half = tmp_path / "half.jsonl"
    half.write_text('{"rumor_id": "r8", "claim": "x"}\n{"rumor_id": "r7", "severity": 7}\n')
    assert cli("rumor", "add", str(half)) == 2
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"rumor_id": "r1", "claim": "another claim"}\n')
    assert cli("rumor", "add", str(clash)) == 2
    orphan = tmp_path / "orphan.jsonl"
    orphan.write_text('{"debunk_id": "d8", "rumor_ids": ["r1"]}\n'
                      '{"debunk_id": "d7", "rumor_ids": ["nope"]}\n')  # fmt: skip
    assert cli("debunks", "import", str(orphan)) == 2
    assert cli("debunks", "import", str(tmp_path / "missing.jsonl")) == 2
    assert client.get(keys.LIVE_SEQ) is None and client.xlen(keys.LIVE_AUDIT) == 0
    assert read_layer(client).layer.empty


def test_the_nightly_folds_the_layer_and_keeps_a_change_made_during_the_run(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings, cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    state = tmp_path / "state"
    job.run_nightly(small_world, date(2026, 10, 5), state, settings, train=False)
    rumors = [json.loads(line) for line in (small_world / "rumors.jsonl").read_text().splitlines()]
    first, second = [r["rumor_id"] for r in rumors if r["status"] == "confirmed"][:2]
    assert cli("rumor", "withdraw", first) == 0
    assert cli("tag", "add", "i-live-1", second) == 0
    folded_seq = int(client.get(keys.LIVE_SEQ))
    real = job.materialize

    def during_the_run(*args, **kwargs):  # an operator acts while the night runs
        assert cli("rumor", "update", second, "--severity", "1") == 0
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "materialize", during_the_run)
    summary = job.run_nightly(small_world, date(2026, 10, 6), state, settings, train=False)
    monkeypatch.setattr(job, "materialize", real)
    assert summary["live_layer"] == {"seq_folded": folded_seq, "entries_read": 2,
                                     "entries_cleared": 2}  # fmt: skip
    version = client.get(keys.CURRENT).decode()
    assert client.hget(keys.meta(version), "live_seq_folded") == str(folded_seq).encode()
    snap = {k.decode(): json.loads(v) for k, v in client.hgetall(keys.rumors(version)).items()}
    assert snap[first]["status"] == "withdrawn"
    assert client.hget(keys.items(version), "i-live-1") == second.encode()
    layer = read_layer(client).layer  # the change made during the run stays live
    assert set(layer.rumors) == {second} and layer.rumors[second].severity == 1
    assert not layer.tags
    # the next night applies the kept overrides (the layer no longer has them) and folds the rest
    job.run_nightly(small_world, date(2026, 10, 7), state, settings, train=False)
    version = client.get(keys.CURRENT).decode()
    snap = {k.decode(): json.loads(v) for k, v in client.hgetall(keys.rumors(version)).items()}
    assert snap[first]["status"] == "withdrawn" and snap[second]["severity"] == 1
    assert client.hget(keys.items(version), "i-live-1") == second.encode()
    assert read_layer(client).layer.empty
    assert (state / "catalog_overrides.jsonl").exists()


def test_rumor_show_and_the_audit_export(cli, client, tmp_path: Path, capsys) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    assert cli("rumor", "withdraw", "r1", "--reason", "wrong") == 0
    assert cli("tag", "add", "i7", "r2") == 0
    for user, rumor, kind in [
        ("u1", "r1", "impression"),
        ("u1", "r1", "click"),
        ("u2", "r1", "served"),
        ("u3", "r2", "impression"),
    ]:
        client.xadd(keys.EVENTS, {"user_id": user, "debunk_id": "d1", "rumor_id": rumor,
                                  "surface": "feed", "event": kind, "ts": "0"})  # fmt: skip
    capsys.readouterr()
    assert cli("rumor", "show", "r1") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["reached"] == {"users": 1, "exposed_users": 0}  # served alone is not seen
    assert shown["rumor"]["status"] == "withdrawn" and shown["live"] is True
    assert [h["command"] for h in shown["history"]] == ["rumor withdraw"]
    assert [d["debunk_id"] for d in shown["debunks"]] == ["d1", "d1m"]
    assert cli("rumor", "show", "nope") == 2
    out = tmp_path / "audit"
    assert main(["export-audit", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 2 and table["command"].to_pylist() == ["rumor withdraw", "tag add"]
    assert main(["export-audit", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 2  # nothing exported twice


def test_the_merge_rule_on_plain_records() -> None:
    base = Catalog.build(RUMORS, DEBUNKS)
    assert effective_catalog(base, LiveLayer(seq=3)) is base
    withdrawn = Rumor("r1", "c", "epidemic", 4, "false", "withdrawn")
    merged = effective_catalog(base, LiveLayer(seq=4, rumors={"r1": withdrawn}))
    assert not merged.rumors["r1"].confirmed and merged.rumors["r2"] is base.rumors["r2"]
    change = TagChange().tag("r3", "manual", 1.0).untag("r1")
    assert item_rumors(["r1", "r2"], change) == ["r2", "r3"]
    assert item_rumors(["r1"], None) == ["r1"]
    assert TagChange.from_dict(change.to_dict()) == change


def test_the_layer_scripts_run_on_a_cluster(cluster_settings: RedisSettings) -> None:
    from feature_store.live_catalog import Change, apply, clear_folded, encode

    c = cluster_settings.sync_client()
    try:
        for key in (keys.LIVE_RUMORS, keys.LIVE_SEQ, keys.LIVE_AUDIT):
            c.delete(key)
        withdrawn = Rumor("r1", "c", "epidemic", 4, "false", "withdrawn")
        seq = apply(c, [Change("rumor", "r1", None, encode(withdrawn), None, withdrawn.to_dict())],
                    actor="alice", command="rumor withdraw")  # fmt: skip
        read = read_layer(c)
        assert read.layer.seq == seq == 1 and read.layer.rumors["r1"] == withdrawn
        assert clear_folded(c, read) == 1 and read_layer(c).layer.empty
        assert c.xlen(keys.LIVE_AUDIT) == 1
    finally:
        c.close()


def test_tag_add_and_confirm_call_the_backfill_seam(
    cli, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import types

    from cli import lifecycle

    calls = []
    fake = types.ModuleType("fake_backfill")
    fake.backfill_tag = lambda data, state, items, rumor, store, now, **kw: calls.append(
        (data, state, items, rumor)
    ) or {"users": 3}  # fmt: skip
    monkeypatch.setitem(sys.modules, "fake_backfill", fake)
    monkeypatch.setattr(lifecycle, "BACKFILL_MODULE", "fake_backfill")
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    data = tmp_path / "data"
    assert cli("tag", "add", "i5", "r2", "--data", str(data)) == 0
    assert json.loads(capsys.readouterr().out)["backfill"] == {"users": 3}
    assert cli("tag", "add", "i5", "r2", "--data", str(data)) == 0  # no change: no backfill
    assert cli("rumor", "withdraw", "r2") == 0
    assert cli("rumor", "confirm", "r2", "--data", str(data)) == 0
    assert calls == [(data, tmp_path / "state", ["i5"], "r2"), (data, tmp_path / "state", [], "r2")]


def test_before_the_first_snapshot_the_library_files_are_the_base(
    cli, client, small_world: Path
) -> None:
    rumors = [json.loads(line) for line in (small_world / "rumors.jsonl").read_text().splitlines()]
    rid = next(r["rumor_id"] for r in rumors if r["status"] == "confirmed")
    assert cli("rumor", "withdraw", rid) == 2  # no snapshot, no --data: an unknown id
    assert cli("rumor", "withdraw", rid, "--data", str(small_world)) == 0
    assert read_layer(client).layer.rumors[rid].status == "withdrawn"
