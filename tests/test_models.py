"""Learned models: codecs, the pure scorer and blend, prebunk caps, degrade on tiny logs,
training on a small world, and RankFeed over real gRPC serving model order and prebunks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pyarrow as pa
import pytest

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import Delivery
from domain.models import FeedModel, UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor
from domain.vocab import ACTION_STRENGTH, SURFACE_BIT
from feature_store import keys
from feature_store.models import (
    PairScorer,
    decode_feed_model,
    decode_user_model,
    encode_feed_model,
    encode_prebunks,
    pack_logits,
    unpack_logits,
)
from feature_store.snapshots import SnapshotWriter
from offline.io.contracts import EVENT_SCHEMA
from offline.join.contracts import STATE_SCHEMA
from offline.models.features import read_events
from offline.models.train import AtRiskConfig, train_at_risk, train_models, train_ranker
from ranking.models import PREBUNK_TEXT
from ranking.pipeline import rank_feed
from tests.fixtures.servers import ServiceThread, wait_for_health

NOW = 1_760_000_000
RUMORS = [Rumor(f"r{i}", f"claim {i}", "epidemic", 3, "false", "confirmed") for i in range(4)]
DEBUNKS = [
    Debunk("d0o", ("r0",), "t", "u", "p", "official", format="article"),
    Debunk("d0v", ("r0",), "t", "u", "p", "media", format="video"),
    Debunk("d1o", ("r1",), "t", "u", "p", "official", format="article"),
    Debunk("d1v", ("r1",), "t", "u", "p", "media", format="video"),
    Debunk("d2o", ("r2",), "t", "u", "p", "official", format="article"),
    Debunk("d3o", ("r3",), "t", "u", "p", "official", format="article"),
]


def feed_model() -> FeedModel:
    """A hand-made ranker: factor 0 is 'video'; the default user is indifferent."""
    ids = [d.debunk_id for d in DEBUNKS]
    rows = np.array(
        [[1.0, 0.0, 1.0 if d.format == "video" else 0.0] for d in DEBUNKS], dtype=np.float32
    )
    return FeedModel({d: i for i, d in enumerate(ids)}, rows, np.array([0, 1, 0], np.float32), 0.9)


VIDEO_FAN = UserModel(factors=np.array([0.0, 1.0, 3.0], np.float32))


def exposure(rid: str, action: str = "impression", hours_ago: float = 1) -> ExposureState:
    ts = int(NOW - hours_ago * 3600)
    return ExposureState(rid, 1, ts, ts, ACTION_STRENGTH[action], SURFACE_BIT["feed"])


def test_codecs_round_trip_float32() -> None:
    m = feed_model()
    back = decode_feed_model(encode_feed_model(m))
    assert back is not None and back.debunk_row == m.debunk_row
    assert back.factors.dtype == np.float32 and np.array_equal(back.factors, m.factors)
    assert back.weight == 0.9
    assert decode_feed_model({}) is None
    raw = {b"f": VIDEO_FAN.factors.tobytes(), b"p": encode_prebunks([("r2", 0.5), ("r3", 0.25)])}
    user = decode_user_model(raw)
    assert np.array_equal(user.factors, VIDEO_FAN.factors)
    assert user.prebunks == (("r2", 0.5), ("r3", 0.25))
    assert decode_user_model({}) == UserModel()


def test_logits_are_dot_products_and_unknown_debunks_are_nan() -> None:
    m = feed_model()
    assert m.logits(VIDEO_FAN.factors, ["d0v", "d0o", "nope"])[:2].tolist() == [3.0, 0.0]
    assert np.isnan(m.logits(None, ["nope"])[0])
    assert m.logits(None, ["d0v"]).tolist() == [0.0]  # the default user


def test_option_rows_are_gathered_once_per_list_and_match_the_logits() -> None:
    m = feed_model()
    cat = Catalog.build(RUMORS, DEBUNKS, m)
    options = cat.debunks_by_rumor["r0"]
    rows, known = m.option_rows("r0", options)
    assert known == tuple(d.debunk_id in m.debunk_row for d in options)
    ids = [d.debunk_id for d in options]
    assert m.row_logits(rows, VIDEO_FAN.factors) == m.logits(VIDEO_FAN.factors, ids).tolist()
    assert m.option_rows("r0", options)[0] is rows  # cached while the list is the same object
    fresh = list(options)
    assert m.option_rows("r0", fresh)[0] is not rows and m.option_rows("r0", fresh)[0] == rows
    assert m.row_logits([], VIDEO_FAN.factors) == []


def test_the_pair_scorer_precomputes_the_logits_serving_would_compute() -> None:
    m = feed_model()
    cat = Catalog.build(RUMORS, DEBUNKS, m)
    options = {rid: [d.debunk_id for d in ds] for rid, ds in cat.debunks_by_rumor.items()}
    options["r9"] = ["d0o", "d1o", "d2o"]  # more options than slots: left to serving
    options["r8"] = ["d0v", "gone"]  # a debunk the model does not know
    scorer = PairScorer(m, {"u1": VIDEO_FAN.factors, "stale": np.ones(7, np.float32)}, options,
                        slots=2)  # fmt: skip
    users = pa.array(["u1", "u1", "cold", "stale", "u1", "u1", "u1"])
    rumors = pa.array(["r0", "r2", "r0", "r1", "r9", "r8", "unknown"])
    counts, logits = scorer.score(users, rumors)
    assert counts.tolist() == [2, 1, 2, 2, 0, 2, 0]
    for i, (user, rid) in enumerate(zip(users.to_pylist(), rumors.to_pylist(), strict=True)):
        factors = VIDEO_FAN.factors if user == "u1" else None  # cold and stale: the default row
        want = m.logits(factors, options[rid])[: counts[i]] if counts[i] else []
        np.testing.assert_allclose(logits[i, : counts[i]], want, rtol=1e-6)
        assert np.isnan(logits[i, counts[i] :]).all()  # unused slots
    assert np.isnan(logits[5, 1])  # "gone" is unknown to the model


def test_precomputed_logits_rank_as_the_matrix_product_does() -> None:
    m = feed_model()
    cat = Catalog.build(RUMORS, DEBUNKS, m)
    exps = [exposure("r0", hours_ago=1), exposure("r1", hours_ago=30), exposure("r2", "share")]
    user = UserModel(VIDEO_FAN.factors, (("r3", 0.7),))

    def scored(e: ExposureState) -> ExposureState:
        ids = [d.debunk_id for d in cat.debunks_by_rumor[e.rumor_id]]
        return e._replace(logits=tuple(m.logits(user.factors, ids).tolist()))

    for delivery in (None, Delivery(impression={"d0v": 1}), Delivery(click={"d1o": 1})):
        online = rank_feed(exps, cat, now=NOW, limit=5, delivery=delivery, model=user)
        stored = rank_feed([scored(e) for e in exps], cat, now=NOW, limit=5, delivery=delivery,
                           model=user)  # fmt: skip
        assert [(c.rumor.rumor_id, c.debunk.debunk_id, c.prebunk) for c in stored] == [
            (c.rumor.rumor_id, c.debunk.debunk_id, c.prebunk) for c in online
        ]
        assert [c.features.get("affinity") for c in stored] == pytest.approx(
            [c.features.get("affinity") for c in online]
        )
    # logits that do not fit the rumor's options (another catalog) are ignored
    odd = exps[0]._replace(logits=(9.0,))
    assert rank_feed([odd], cat, now=NOW, limit=5, model=user)[0].debunk.debunk_id == "d0v"


def test_prebunk_logits_are_packed_per_rumor_and_rank_as_computed_online() -> None:
    assert unpack_logits(pack_logits([1.0, -2.0]) + pack_logits([])) == [(1.0, -2.0), ()]
    with pytest.raises(ValueError):
        unpack_logits(pack_logits([1.0])[:-1])
    m = feed_model()
    cat = Catalog.build(RUMORS, DEBUNKS, m)
    ids = {r: [d.debunk_id for d in ds] for r, ds in cat.debunks_by_rumor.items()}
    prebunks = (("r0", 0.9), ("r1", 0.8))
    raw = {b"f": VIDEO_FAN.factors.tobytes(), b"p": encode_prebunks(list(prebunks)),
           b"q": b"".join(pack_logits(m.logits(VIDEO_FAN.factors, ids[r]).tolist())
                          for r, _ in prebunks)}  # fmt: skip
    stored = decode_user_model(raw)
    assert len(stored.prebunk_logits) == 2
    online = UserModel(VIDEO_FAN.factors, prebunks)
    for delivery in (None, Delivery(impression={"d1v": 1}), Delivery(dismissed_rumors={"r0": 1})):
        got = rank_feed([], cat, now=NOW, limit=5, delivery=delivery, model=stored)
        want = rank_feed([], cat, now=NOW, limit=5, delivery=delivery, model=online)
        assert [(c.rumor.rumor_id, c.debunk.debunk_id) for c in got] == [
            (c.rumor.rumor_id, c.debunk.debunk_id) for c in want
        ]
    # logits of a different length than the prebunk list are not trusted
    assert decode_user_model({**raw, b"q": pack_logits([1.0])}).prebunk_logits == ()


def test_the_writer_stores_prebunk_logits_beside_the_prebunks(client) -> None:
    m = feed_model()
    options = {r: [d.debunk_id for d in ds]
               for r, ds in Catalog.build(RUMORS, DEBUNKS).debunks_by_rumor.items()}  # fmt: skip
    w = SnapshotWriter(client, "vq")
    w.write_models(m, {"u1": VIDEO_FAN.factors}, {"u1": [("r0", 0.9), ("r2", 0.5)],
                                                  "u2": [("r1", 0.4)]},
                   PairScorer(m, {"u1": VIDEO_FAN.factors}, options))  # fmt: skip
    u1 = decode_user_model(client.hgetall(keys.user_model("vq", "u1")))
    np.testing.assert_allclose(u1.prebunk_logits[0], m.logits(VIDEO_FAN.factors, options["r0"]))
    np.testing.assert_allclose(u1.prebunk_logits[1], m.logits(VIDEO_FAN.factors, options["r2"]))
    u2 = decode_user_model(client.hgetall(keys.user_model("vq", "u2")))  # cold: default row
    np.testing.assert_allclose(u2.prebunk_logits[0], m.logits(None, options["r1"]))


def test_the_writer_scores_prebunks_a_batch_of_users_at_a_time(client) -> None:
    """Batches of one user and one batch of all store the same rows (the logits are scored per
    batch, so memory follows the batch); an invalid id and a user with nothing are skipped."""
    m = feed_model()
    options = {r: [d.debunk_id for d in ds]
               for r, ds in Catalog.build(RUMORS, DEBUNKS).debunks_by_rumor.items()}  # fmt: skip
    factors = {"u1": VIDEO_FAN.factors, "u3": VIDEO_FAN.factors * 0.5}
    prebunks = {"u1": [("r0", 0.9), ("r2", 0.5)], "u2": [("r1", 0.4)], "bad id": [("r0", 0.1)],
                "u4": []}  # fmt: skip
    rows = []
    for version, batch in (("vb1", 1), ("vb9", 9)):
        w = SnapshotWriter(client, version, batch_users=batch)
        w.write_models(m, factors, prebunks, PairScorer(m, factors, options))
        assert w.summary.skipped_invalid_ids == 1 and w.summary.model_users == 3  # u4: nothing
        rows.append({u: client.hgetall(keys.user_model(version, u)) for u in ("u1", "u2", "u3")})
        assert client.exists(keys.model(version))
    assert rows[0] == rows[1]
    assert set(rows[0]["u1"]) == {b"f", b"p", b"q"} and set(rows[0]["u3"]) == {b"f"}


def test_model_picks_the_debunk_and_orders_within_a_strength() -> None:
    cat = Catalog.build(RUMORS, DEBUNKS, feed_model())
    exps = [exposure("r0", hours_ago=1), exposure("r1", hours_ago=30), exposure("r2", "share")]
    rules = rank_feed(exps, cat, now=NOW, limit=5)
    assert [c.debunk.debunk_id for c in rules] == ["d2o", "d0o", "d1o"]
    ranked = rank_feed(exps, cat, now=NOW, limit=5, model=VIDEO_FAN)
    # the share still comes first (the rules decide priority); the video fan gets videos
    assert [c.debunk.debunk_id for c in ranked] == ["d2o", "d0v", "d1v"]
    assert ranked[1].features["affinity"] > 0.9


def test_seen_debunks_are_skipped_by_the_model_too() -> None:
    cat = Catalog.build(RUMORS, DEBUNKS, feed_model())
    seen = Delivery(impression={"d0v": 1})
    ranked = rank_feed([exposure("r0")], cat, now=NOW, limit=5, delivery=seen, model=VIDEO_FAN)
    assert [c.debunk.debunk_id for c in ranked] == ["d0o"]


def test_at_most_one_prebunk_after_every_exposed_card() -> None:
    cat = Catalog.build(RUMORS, DEBUNKS, feed_model())
    user = UserModel(VIDEO_FAN.factors, (("r0", 0.9), ("r2", 0.8), ("r3", 0.7)))
    ranked = rank_feed([exposure("r0"), exposure("r1")], cat, now=NOW, limit=5, model=user)
    assert [c.rumor.rumor_id for c in ranked] == ["r0", "r1", "r2"]  # r0 is exposed: skipped
    assert [c.prebunk for c in ranked] == [False, False, True]
    assert ranked[-1].score < min(c.score for c in ranked[:-1])
    assert rank_feed([exposure("r0")], cat, now=NOW, limit=1, model=user)[0].prebunk is False
    dismissed = Delivery(dismissed_rumors={"r2": 1})
    later = UserModel(VIDEO_FAN.factors, user.prebunks[1:])
    only = rank_feed([], cat, now=NOW, limit=5, delivery=dismissed, model=later)
    assert [(c.rumor.rumor_id, c.prebunk) for c in only] == [("r3", True)]


def _events(rows: list[tuple], hours: list[float] | None = None) -> pa.Table:
    ts = datetime(2026, 10, 3, tzinfo=UTC)
    n = len(rows)
    times = [ts + timedelta(hours=h) for h in hours] if hours else [ts] * n
    return pa.table(
        {"user_id": [r[0] for r in rows], "debunk_id": [r[1] for r in rows],
         "rumor_id": ["r0"] * n, "surface": ["feed"] * n, "event": [r[2] for r in rows],
         "ts": times, "experiment": [""] * n, "arm": [""] * n},
        schema=EVENT_SCHEMA,
    )  # fmt: skip


def test_empty_or_tiny_logs_degrade_to_rules_with_a_warning(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    with caplog.at_level(logging.WARNING, "debunk.train"):
        empty = train_models(read_events(tmp_path / "none"), None, RUMORS, DEBUNKS)
        tiny = train_models(_events([("u1", "d0o", "impression"), ("u1", "d0o", "click")]),
                            None, RUMORS, DEBUNKS)  # fmt: skip
    for trained in (empty, tiny):
        assert trained.feed is None and trained.user_factors == {} and trained.prebunks == {}
        assert trained.summary["ranker"]["trained"] is False
    assert "rules only" in caplog.text and "at-risk model not trained" in caplog.text


def test_ranker_learns_a_planted_format_preference_deterministically() -> None:
    rng = np.random.default_rng(3)
    rows, hours = [], []
    for u in range(300):
        fan = u % 2  # odd users read videos, even users articles
        for k, d in enumerate(DEBUNKS):  # each user's cards an hour apart
            rows.append((f"u{u}", d.debunk_id, "impression"))
            hours.append(k)
            likes = (d.format == "video") == bool(fan)
            if rng.random() < (0.6 if likes else 0.05):
                rows.append((f"u{u}", d.debunk_id, "click"))
                hours.append(k + 0.1)
    events = _events(rows, hours)
    model, users, summary = train_ranker(events, DEBUNKS, RUMORS)
    again, users2, _ = train_ranker(events, DEBUNKS, RUMORS)
    assert model is not None and summary["trained"]
    assert np.array_equal(model.factors, again.factors)  # fixed seed
    assert np.array_equal(users["u1"], users2["u1"])
    fan, reader = (
        model.logits(users["u1"], ["d0v", "d0o"]),
        model.logits(users["u2"], ["d0v", "d0o"]),
    )
    assert fan[0] > fan[1] and reader[1] > reader[0]
    new = Debunk("dnew", ("r0",), "t", "u", "p", "media", format="video")  # no events at all
    cold, _, _ = train_ranker(events, [*DEBUNKS, new], RUMORS)
    assert cold is not None and not np.isnan(cold.logits(users["u1"], ["dnew"])[0])


def _state(pairs: list[tuple[str, str]]) -> pa.Table:
    ts = datetime(2026, 10, 2, tzinfo=UTC)
    n = len(pairs)
    return pa.table(
        {"user_id": [p[0] for p in pairs], "rumor_id": [p[1] for p in pairs],
         "exposures": [1] * n, "first_ts": [ts] * n, "last_ts": [ts] * n,
         "strongest_action": ["click"] * n, "surface_mask": [1] * n, "shared": [False] * n,
         "first_share_ts": [None] * n, "last_share_ts": [None] * n, "tag_score": [1.0] * n},
        schema=STATE_SCHEMA,
    )  # fmt: skip


def test_at_risk_prebunks_follow_co_engagement_and_are_capped() -> None:
    # two communities: r0+r1 readers and r2+r3 readers; some have met only one of their pair
    pairs = []
    for u in range(200):
        a, b = ("r0", "r1") if u % 2 else ("r2", "r3")
        pairs.append((f"u{u:03d}", a))
        if u < 160:
            pairs.append((f"u{u:03d}", b))
    prebunks, summary = train_at_risk(_state(pairs), RUMORS, DEBUNKS, AtRiskConfig(factors=2))
    assert summary["trained"]
    for u in range(160, 200):
        expected = "r1" if u % 2 else "r3"
        assert prebunks[f"u{u:03d}"][0][0] == expected
    exposed = {r: sum(1 for _, x in pairs if x == r) for r in ("r0", "r1", "r2", "r3")}
    at_risk = {r: 0 for r in exposed}
    for rows in prebunks.values():
        assert len(rows) <= 3
        for r, _ in rows:
            at_risk[r] += 1
    assert all(at_risk[r] <= exposed[r] for r in exposed)
    capped, _ = train_at_risk(_state(pairs), RUMORS, DEBUNKS,
                              AtRiskConfig(factors=2, max_per_rumor=5))  # fmt: skip
    assert sum(len(v) for v in capped.values()) <= 5 * 4


def test_at_risk_blend_finds_what_low_rank_als_misses_and_is_blockwise_exact() -> None:
    from offline.models.train import _top_blended, co_engagement, engagement_matrix

    # eight communities of readers, each of its own pair of rumors: two ALS factors cannot
    # tell eight communities apart, co-engagement with the pair's readers can
    groups = 8
    rumors = [Rumor(f"q{i}", "c", "epidemic", 3, "false", "confirmed") for i in range(2 * groups)]
    debunks = [Debunk(f"d{i}", (f"q{i}",), "t", "u", "p", "official") for i in range(2 * groups)]
    pairs = []
    for u in range(groups * 40):
        g = u % groups
        pairs.append((f"u{u:03d}", f"q{2 * g}"))
        if u < groups * 30:
            pairs.append((f"u{u:03d}", f"q{2 * g + 1}"))
    late = range(groups * 30, groups * 40)

    def found(prebunks: dict[str, list[tuple[str, float]]]) -> int:
        first = {u: rows[0][0] for u, rows in prebunks.items()}
        return sum(1 for u in late if first.get(f"u{u:03d}") == f"q{2 * (u % groups) + 1}")

    state = _state(pairs)
    als_only, _ = train_at_risk(state, rumors, debunks, AtRiskConfig(factors=2, co_weight=0.0))
    blend, summary = train_at_risk(state, rumors, debunks, AtRiskConfig(factors=2))
    assert summary["co_weight"] > 0
    assert found(blend) == len(late) > found(als_only)
    again, _ = train_at_risk(state, rumors, debunks, AtRiskConfig(factors=2))
    assert again == blend  # seeds fixed
    for rows in blend.values():
        assert len(rows) <= 3
    exposed = {(u, r) for u, r in pairs}
    assert all((u, r) not in exposed for u, rows in blend.items() for r, _ in rows)
    # the co-engagement of q1 is q0 (shared readers over sqrt of both audiences), not itself
    _, _, matrix = engagement_matrix(state, 4.0)
    _, co = co_engagement(matrix, np.array([1]))
    assert co[1, 0] == 0 and co[0, 0] == pytest.approx(30 / np.sqrt(40 * 30))
    # in place: the same co-engagement, the matrix itself becomes the binary one
    copy = matrix.copy()
    assert copy.data.max() > 1
    binary, co_in_place = co_engagement(copy, np.array([1]), in_place=True)
    assert binary is copy and set(copy.data.tolist()) == {1.0}
    assert (co_in_place != co).nnz == 0
    # blocks of a few users give exactly the scores of one block
    ufac = np.random.default_rng(0).normal(size=(matrix.shape[0], 3)).astype(np.float32)
    rfac = np.random.default_rng(1).normal(size=(matrix.shape[1], 3)).astype(np.float32)
    eligible = np.ones(matrix.shape[1], dtype=bool)
    config = AtRiskConfig(min_score=-10.0)
    whole = _top_blended(ufac, rfac, matrix, eligible, config)
    small = _top_blended(ufac, rfac, matrix, eligible, config, cells=16 * 7)
    whole, small = (sorted(zip(*(a.tolist() for a in x), strict=True)) for x in (whole, small))
    assert [(u, r) for u, r, _ in whole] == [(u, r) for u, r, _ in small]
    assert np.allclose([x[2] for x in sorted(whole)], [x[2] for x in sorted(small)], atol=1e-5)
    assert len(whole) == 3 * matrix.shape[0]


def test_train_on_a_small_world(small_world) -> None:
    from offline.io import catalog
    from offline.join.engine import join_exposures

    rumors = catalog.load_rumors(small_world / "rumors.jsonl")
    debunks = catalog.load_debunks(small_world / "debunks.jsonld")
    state, _ = join_exposures(small_world / "exposures",
                              catalog.load_tags(small_world / "tagged_items.parquet"))  # fmt: skip
    trained = train_models(read_events(small_world / "debunk_events"), state, rumors, debunks)
    if trained.feed is not None:  # a small world may be too small: then it degrades
        assert set(trained.feed.debunk_row) == {d.debunk_id for d in debunks}
        assert trained.feed.factors.dtype == np.float32
    assert "ranker" in trained.summary and "at_risk" in trained.summary


@pytest.mark.parametrize("precomputed", [False, True], ids=["matrix-product", "precomputed"])
def test_rank_feed_over_grpc_serves_model_order_and_a_labelled_prebunk(
    client, settings, precomputed: bool
) -> None:
    ts = datetime(2026, 10, 1, tzinfo=UTC)
    state = pa.RecordBatch.from_pydict(
        {"user_id": ["u1", "u1"], "rumor_id": ["r0", "r1"], "exposures": [1, 1],
         "first_ts": [ts, ts], "last_ts": [ts, ts], "strongest_action": ["click", "click"],
         "surface_mask": [1, 1], "shared": [False, False], "first_share_ts": [None, None],
         "last_share_ts": [None, None], "tag_score": [1.0, 1.0]},
        schema=STATE_SCHEMA,
    )  # fmt: skip
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    options = {r: [d.debunk_id for d in ds]
               for r, ds in Catalog.build(RUMORS, DEBUNKS).debunks_by_rumor.items()}  # fmt: skip
    scorer = PairScorer(feed_model(), {"u1": VIDEO_FAN.factors}, options)
    w.write_exposures([state], scorer if precomputed else None)
    assert {len(v) for v in client.hgetall(keys.user_exposures("v1", "u1")).values()} == {
        32 if precomputed else 15
    }
    w.write_models(feed_model(), {"u1": VIDEO_FAN.factors},
                   {"u1": [("r2", 0.8), ("r3", 0.7)], "u2": [("r3", 0.6)]})  # fmt: skip
    w.commit()
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            wait_for_health(ch, 1)
            stub = pb_grpc.DebunkServiceStub(ch)
            reply = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=5), timeout=5)
            cards = [(c.debunk_id, c.reason.prebunk) for c in reply.cards]
            assert {d for d, _ in cards[:2]} == {"d0v", "d1v"}  # the video fan's picks
            assert cards[2] == ("d2o", True) and len(cards) == 3  # one prebunk, last
            assert reply.cards[2].reason.text.startswith(PREBUNK_TEXT)
            assert reply.cards[0].reason.model_affinity > 0.9
            unexposed = stub.RankFeed(pb.RankFeedRequest(user_id="u2", limit=5), timeout=5)
            assert [(c.debunk_id, c.reason.prebunk) for c in unexposed.cards] == [("d3o", True)]
            batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=["u1", "u2", "u9"],
                                                               limit=5), timeout=5)  # fmt: skip
            assert [len(f.cards) for f in batch.feeds] == [3, 1, 0]
    finally:
        svc.stop()


def test_nightly_versions_the_models_with_the_snapshot(
    small_world, tmp_path, client, settings
) -> None:
    from datetime import date

    from offline.nightly.job import run_nightly

    summary = run_nightly(small_world, date(2026, 10, 5), tmp_path / "state", settings)
    version = summary["snapshot"]["version"]
    assert "ranker" in summary["models"] and "at_risk" in summary["models"]
    some_user = next(client.scan_iter(match=keys.user_exposures_prefix(version) + b"*"))
    values = list(client.hgetall(some_user).values())
    if summary["models"]["ranker"]["trained"]:
        assert decode_feed_model(client.hgetall(keys.model(version))) is not None
        assert {len(v) for v in values} == {32}  # option logits precomputed with the state
    else:  # degraded: the snapshot has no model and the service ranks by the rules
        assert not client.exists(keys.model(version))
        assert {len(v) for v in values} == {15}


def test_taste_features_are_smoothed_click_rates_by_format_and_authority() -> None:
    import pandas as pd

    from offline.models.features import taste_features, user_features

    pairs = pd.DataFrame(
        {"user_id": ["a", "a", "a", "a", "b", "b"],
         "debunk_id": ["d0v", "d1v", "d0o", "d1o", "d0v", "d0o"],
         "label": [1, 2, 0, 0, 0, 0]}
    )  # fmt: skip
    rows, names, values = taste_features(pairs, DEBUNKS, ["a", "b", "c"])
    got = {(int(r), str(n)): float(v) for r, n, v in zip(rows, names, values, strict=True)}
    assert got[(0, "taste:format:video")] > 0 > got[(0, "taste:format:article")]
    assert got[(0, "taste:authority:media")] > 0 > got[(0, "taste:authority:official")]
    assert got[(1, "taste:format:video")] < 0  # shown, never clicked
    assert not any(r == 2 for r, _ in got)  # no history, no taste
    m = user_features(["a", "b", "c"], None, None, (rows, names, values), identity=False)
    assert m.matrix.shape[0] == 3 and "taste:format:video" in m.names
    assert m.matrix[2].nnz == 1  # only the feature every user has


def test_ranker_taste_comes_from_earlier_events_only() -> None:
    # users click videos in the first half; in the second half they only see articles
    rows, hours = [], []
    for u in range(200):
        for k, (d, clicked) in enumerate((("d0v", True), ("d1v", True), ("d0o", False),
                                          ("d1o", False), ("d2o", u % 5 == 0),
                                          ("d3o", u % 7 == 0))):  # fmt: skip
            rows.append((f"u{u}", d, "impression"))
            hours.append(k)
            if clicked:
                rows.append((f"u{u}", d, "click"))
                hours.append(k + 0.1)
    events = _events(rows, hours)
    model, users, summary = train_ranker(events, DEBUNKS, RUMORS)
    assert model is not None
    assert summary["pairs"] == 200 * 3  # fitted on the later half; the earlier half is history
    assert summary["history_pairs"] == 200 * 3


def test_at_risk_evaluation_splits_each_cascade_and_measures_baselines(tmp_path) -> None:
    import pyarrow.parquet as pq

    from offline.models.evaluate import evaluate_at_risk

    # two communities of 60 users; each post is engaged by most of one community, over time,
    # plus a few very active users who engage with everything (popularity's favourites)
    rng = np.random.default_rng(1)
    posts, rows = [], []
    t0 = datetime(2012, 9, 1, tzinfo=UTC)
    for p in range(40):
        community = p % 2
        posts.append((f"p{p}", "rumor" if p % 4 < 2 else "non-rumor"))
        members = [f"c{community}u{i}" for i in range(60) if rng.random() < 0.5]
        engagers = members + [f"hub{i}" for i in range(3)]
        for j, u in enumerate(rng.permutation(engagers)):
            rows.append((f"p{p}", str(u), t0 + timedelta(days=p, minutes=j)))
    pq.write_table(pa.table({"post_id": [p for p, _ in posts], "label": [x for _, x in posts]}),
                   tmp_path / "posts.parquet")  # fmt: skip
    eng = {"post_id": [r[0] for r in rows], "uid": [r[1] for r in rows], "ts": [r[2] for r in rows]}
    pq.write_table(pa.table(eng), tmp_path / "engagements.parquet")
    out = evaluate_at_risk(tmp_path, k=10, config=AtRiskConfig(factors=4, alpha=10.0))
    # every rumor post, split at half of its cascade; half of them tune beta, half report
    assert out["test_rumors"] + out["tune_rumors"] == 20
    assert out["test_rumors"] > 0 and out["tune_rumors"] > 0
    assert out["co_weight"] in (0.3, 1.0, 3.0, 10.0)
    m = out["metrics"]
    assert set(m) == {"at_risk", "als", "popularity", "co_engagement"}
    assert m["als"]["recall@10"] > m["popularity"]["recall@10"]
    assert m["co_engagement"]["recall@10"] > m["popularity"]["recall@10"]
    assert m["at_risk"]["recall@10"] > m["popularity"]["recall@10"]
    assert out["lift"]["als_recall@10_over_popularity"] > 1


def test_ranker_evaluation_trains_on_the_partitions_join_exposures_reads(tmp_path) -> None:
    from datetime import UTC, datetime

    from offline.io.logs import partition_files
    from offline.models.evaluate import train_partitions

    logs = tmp_path / "exposures"
    for day in ("2026-01-01", "2026-01-02", "2026-01-04"):
        (logs / f"dt={day}").mkdir(parents=True)
        (logs / f"dt={day}" / "part-0.parquet").write_bytes(b"")
    dates = train_partitions(logs, datetime(2026, 1, 1, tzinfo=UTC), 3)
    assert dates == ["2026-01-01", "2026-01-02"]
    assert all(partition_files(logs, d) for d in dates)  # values, not folder names
