"""The synthetic world: determinism, the input contracts' schemas, referential integrity and the
realistic shapes the rest of the system is tested against (heavy tails, cascades, noise,
planted preferences)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domain.vocab import (
    ACTIONS,
    AUTHORITIES,
    CATEGORIES,
    DEBUNK_EVENTS,
    FORMATS,
    SURFACES,
    VERDICTS,
)
from offline.synth.authors import author_types
from offline.synth.ids import fixed_ids
from offline.synth.world import default_rumors, synthesize

START = date(2026, 10, 1)
DAYS = 5
PARAMS: dict[str, Any] = {"users": 3000, "days": DAYS, "seed": 7, "start": START, "rumors": 12}
CJK = re.compile(r"[\u4e00-\u9fff]")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TS_UTC = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One world, the same world again, and one with another seed; generated once."""
    root = tmp_path_factory.mktemp("synth")
    summary = synthesize(root / "a", **PARAMS)
    synthesize(root / "again", **PARAMS)
    synthesize(root / "other", **{**PARAMS, "seed": 8})
    return {"a": root / "a", "again": root / "again", "other": root / "other", "summary": summary}


@pytest.fixture(scope="module")
def world(worlds: dict[str, Any]) -> Path:
    return worlds["a"]


@pytest.fixture(scope="module")
def exposures(world: Path) -> pd.DataFrame:
    frames = []
    for part in sorted(world.glob("exposures/dt=*/*.parquet")):
        df = pq.read_table(part).to_pandas()
        df["dt"] = part.parent.name[3:]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def rumor_items(world: Path) -> pd.DataFrame:
    return pq.read_table(world / "truth" / "rumor_items.parquet").to_pandas()


@pytest.fixture(scope="module")
def rumor_rows(exposures: pd.DataFrame, rumor_items: pd.DataFrame) -> pd.DataFrame:
    return exposures.merge(rumor_items, on="item_id")


@pytest.fixture(scope="module")
def rumors(world: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (world / "rumors.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def debunks(world: Path) -> list[dict[str, Any]]:
    return json.loads((world / "debunks.jsonld").read_text("utf-8"))


@pytest.fixture(scope="module")
def events(world: Path) -> pd.DataFrame:
    frames = []
    for part in sorted(world.glob("debunk_events/dt=*/*.parquet")):
        df = pq.read_table(part).to_pandas()
        df["dt"] = part.parent.name[3:]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _days() -> list[str]:
    return [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]


# --- determinism and layout ------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(worlds: dict[str, Any]) -> None:
    a, again = _files(worlds["a"]), _files(worlds["again"])
    assert len(a) >= 5 + 5 + 7
    assert a.keys() == again.keys()
    for name in a:
        assert a[name] == again[name], name


def test_another_seed_gives_another_world(worlds: dict[str, Any]) -> None:
    a, other = _files(worlds["a"]), _files(worlds["other"])
    for name in ("rumors.jsonl", "items.parquet", f"exposures/dt={START}/part-00000.parquet"):
        assert a[name] != other[name], name


def test_layout_and_summary(world: Path, worlds: dict[str, Any]) -> None:
    for dt in _days():
        assert (world / "exposures" / f"dt={dt}" / "part-00000.parquet").is_file()
        assert (world / "debunk_events" / f"dt={dt}" / "part-00000.parquet").is_file()
    assert not list(world.rglob("*.tmp"))
    written = json.loads((world / "world.json").read_text("utf-8"))
    assert written == worlds["summary"]
    assert written["params"]["seed"] == 7 and written["rumors"] == 12
    assert written["exposure_rows"] == sum(
        pq.ParquetFile(p).metadata.num_rows for p in world.glob("exposures/*/*.parquet")
    )
    assert default_rumors(3000) == 8 and default_rumors(250_000) == 250
    assert default_rumors(10**8) == 30_000


def test_rerun_into_the_same_folder_drops_stale_parts(tmp_path: Path) -> None:
    synthesize(tmp_path, users=300, days=3, seed=1)
    synthesize(tmp_path, users=300, days=2, seed=1, start=date(2026, 10, 2))
    assert sorted(p.name for p in (tmp_path / "exposures").iterdir()) == [
        "dt=2026-10-02",
        "dt=2026-10-03",
    ]
    assert sorted(p.name for p in (tmp_path / "debunk_events").iterdir()) == [
        "dt=2026-10-02",
        "dt=2026-10-03",
    ]


def test_bad_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users"):
        synthesize(tmp_path, users=0, days=1, seed=1)
    with pytest.raises(ValueError, match="days"):
        synthesize(tmp_path, users=10, days=0, seed=1)


def test_fixed_ids() -> None:
    ids = fixed_ids(np.array([0, 42, 99_999_999]), "u", 8)
    assert ids.to_pylist() == ["u00000000", "u00000042", "u99999999"]
    assert fixed_ids(np.array([123_456_789]), "i", 9).to_pylist() == ["i123456789"]
    assert fixed_ids(np.array([7]), "d", 7).to_pylist() == ["d0000007"]
    with pytest.raises(ValueError):
        fixed_ids(np.array([10**6]), "r", 6)


# --- schemas ---------------------------------------------------------------------------------


def _schema(path: Path) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in pq.read_schema(path)]


def test_exposure_schema_is_exact(world: Path) -> None:
    for part in world.glob("exposures/*/*.parquet"):
        assert _schema(part) == [
            ("user_id", pa.string()),
            ("item_id", pa.string()),
            ("ts", TS_UTC),
            ("surface", pa.string()),
            ("action", pa.string()),
        ]


def test_other_schemas_are_exact(world: Path) -> None:
    assert _schema(world / "items.parquet") == [
        ("item_id", pa.string()),
        ("text", pa.string()),
        ("created_at", TS_UTC),
        ("author_type", pa.string()),
    ]
    assert _schema(world / "tagged_items.parquet") == [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("source", pa.string()),
        ("score", pa.float64()),
    ]
    assert _schema(world / "truth" / "users.parquet") == [
        ("user_id", pa.string()),
        ("preferred_format", pa.string()),
        ("trusts_official", pa.bool_()),
        ("activity", pa.float64()),
    ]
    for part in world.glob("debunk_events/*/*.parquet"):
        assert _schema(part) == [
            ("user_id", pa.string()),
            ("debunk_id", pa.string()),
            ("rumor_id", pa.string()),
            ("surface", pa.string()),
            ("event", pa.string()),
            ("ts", TS_UTC),
            ("experiment", pa.string()),
            ("arm", pa.string()),
        ]


def test_exposure_values(exposures: pd.DataFrame) -> None:
    assert set(exposures["surface"]) <= set(SURFACES)
    assert set(exposures["action"]) <= set(ACTIONS)
    assert exposures["user_id"].str.fullmatch(r"u\d{8}").all()
    assert exposures["item_id"].str.fullmatch(r"i\d{9}").all()
    counts = exposures["action"].value_counts(normalize=True)
    assert counts.index[0] == "impression" and counts["share"] > 0
    assert exposures["surface"].value_counts().index[0] == "feed"


def test_every_ts_inside_its_partition_and_sorted(world: Path) -> None:
    for folder in (world / "exposures", world / "debunk_events"):
        for part in folder.glob("*/*.parquet"):
            ts = pq.read_table(part, columns=["ts"]).column("ts").to_numpy()
            day = datetime.fromisoformat(part.parent.name[3:]).replace(tzinfo=UTC)
            lo = np.datetime64(day.replace(tzinfo=None), "us")
            hi = lo + np.timedelta64(1, "D")
            assert (ts >= lo).all() and (ts < hi).all(), part
            assert (np.diff(ts.astype(np.int64)) >= 0).all(), part


# --- referential integrity -------------------------------------------------------------------


def test_every_exposed_item_has_a_text(world: Path, exposures: pd.DataFrame) -> None:
    items = pq.read_table(world / "items.parquet").to_pandas()
    assert items["item_id"].is_unique
    assert set(exposures["item_id"]) <= set(items["item_id"])
    assert items["text"].map(lambda t: bool(CJK.search(t))).all()


def test_items_are_exposed_after_they_are_created(world: Path, exposures: pd.DataFrame) -> None:
    items = pq.read_table(world / "items.parquet").to_pandas()
    joined = exposures.merge(items, on="item_id")
    assert len(joined) == len(exposures)
    assert (joined["ts"] >= joined["created_at"]).all()


def test_tags_and_debunks_reference_rumors(
    world: Path, rumors: list[dict[str, Any]], debunks: list[dict[str, Any]]
) -> None:
    ids = {r["rumor_id"] for r in rumors}
    tags = pq.read_table(world / "tagged_items.parquet").to_pandas()
    assert set(tags["rumor_id"]) <= ids and set(tags["rumor_id"]) == ids
    assert set(tags["source"]) == {"manual"} and (tags["score"] == 1.0).all()
    assert {d["itemReviewed"]["identifier"] for d in debunks} <= ids


def test_only_part_of_each_rumors_items_is_tagged(rumor_items: pd.DataFrame) -> None:
    for _, group in rumor_items.groupby("rumor_id"):
        assert group.loc[group["kind"] == "original", "tagged"].all()
        assert 0 < group["tagged"].sum() < len(group)
    assert 0.3 < rumor_items["tagged"].mean() < 0.85


def test_rumor_records(rumors: list[dict[str, Any]]) -> None:
    assert [r["rumor_id"] for r in rumors] == [f"r{i:06d}" for i in range(12)]
    for r in rumors:
        assert r["category"] in CATEGORIES and r["verdict"] in VERDICTS
        assert 1 <= r["severity"] <= 5
        assert r["status"] in ("confirmed", "withdrawn")
        assert ISO_Z.match(r["confirmed_at"])
        assert CJK.search(r["claim"])
        assert r["keywords"] and all(k in r["claim"] for k in r["keywords"])
        assert 2 <= len(r["variants"]) <= 5
        assert r["claim"] not in r["variants"] and len(set(r["variants"])) == len(r["variants"])
    assert len({r["claim"] for r in rumors}) == len(rumors)
    assert any(r["status"] == "withdrawn" for r in rumors)
    assert sum(r["status"] == "confirmed" for r in rumors) >= len(rumors) // 2


def test_debunks_are_claim_reviews(
    world: Path, rumors: list[dict[str, Any]], debunks: list[dict[str, Any]]
) -> None:
    items = pq.read_table(world / "items.parquet").to_pandas().set_index("item_id")
    ri = pq.read_table(world / "truth" / "rumor_items.parquet").to_pandas()
    started = {
        row.rumor_id: items.loc[row.item_id, "created_at"]
        for row in ri[ri["kind"] == "original"].itertuples()
    }
    by_rumor: dict[str, list[dict[str, Any]]] = {}
    for d in debunks:
        assert d["@context"] == "https://schema.org" and d["@type"] == "ClaimReview"
        assert re.fullmatch(r"d\d{7}", d["identifier"])
        assert d["url"] == f"https://debunk.example/d/{d['identifier']}"
        assert d["author"]["additionalType"] in AUTHORITIES and d["author"]["name"]
        assert d["additionalType"] in FORMATS and d["inLanguage"] in ("zh", "en")
        assert d["reviewRating"]["alternateName"] in VERDICTS
        assert ISO_Z.match(d["datePublished"]) and d["headline"]
        rid = d["itemReviewed"]["identifier"]
        published = pd.Timestamp(d["datePublished"])
        assert published > started[rid]
        by_rumor.setdefault(rid, []).append(d)
    assert set(by_rumor) == {r["rumor_id"] for r in rumors}
    for reviews in by_rumor.values():
        assert 2 <= len(reviews) <= 4
        authorities = [d["author"]["additionalType"] for d in reviews]
        assert len(set(authorities)) == len(authorities)
    assert len({d["author"]["additionalType"] for d in debunks}) > 1
    assert any(
        "official" not in {d["author"]["additionalType"] for d in v} for v in by_rumor.values()
    )


# --- realistic shapes ------------------------------------------------------------------------


def test_user_activity_and_item_popularity_are_heavy_tailed(exposures: pd.DataFrame) -> None:
    per_user = exposures["user_id"].value_counts()
    top = per_user.iloc[: max(1, len(per_user) // 100)].sum() / len(exposures)
    assert top > 0.08, f"top 1% of users make {top:.1%} of rows"
    per_item = exposures["item_id"].value_counts()
    top_items = per_item.iloc[: max(1, len(per_item) // 100)].sum() / len(exposures)
    assert top_items > 0.15, f"top 1% of items get {top_items:.1%} of rows"


def test_most_users_never_see_a_rumor(
    exposures: pd.DataFrame, rumor_rows: pd.DataFrame, worlds: dict[str, Any]
) -> None:
    exposed = rumor_rows["user_id"].nunique() / 3000
    assert 0.02 <= exposed <= 0.40, exposed
    assert exposed == pytest.approx(worlds["summary"]["exposed_fraction"], abs=1e-6)
    assert len(rumor_rows) / len(exposures) < 0.1
    assert len(rumor_rows) == worlds["summary"]["rumor_exposure_rows"]


def test_rumors_cascade_across_days(rumor_rows: pd.DataFrame) -> None:
    days_per_rumor = rumor_rows.groupby("rumor_id")["dt"].nunique()
    assert days_per_rumor.max() >= 2
    assert (rumor_rows["action"] == "share").any()
    assert rumor_rows["surface"].nunique() >= 3
    pairs = rumor_rows.groupby(["user_id", "rumor_id"]).size()
    assert pairs.max() >= 2, "some users see a rumor more than once"


def test_variants_carry_platform_noise(world: Path, rumor_items: pd.DataFrame) -> None:
    items = pq.read_table(world / "items.parquet").to_pandas()
    texts = items.merge(rumor_items[rumor_items["kind"] == "variant"], on="item_id")["text"]
    assert texts.str.contains("//@", regex=False).any()
    assert texts.str.contains(r"\[[^\]]+\]").any()
    assert texts.str.contains("http://t.cn/", regex=False).any()
    assert texts.map(lambda t: bool(CJK.search(t))).all()


def test_events_follow_exposures_of_confirmed_rumors(
    events: pd.DataFrame,
    rumor_rows: pd.DataFrame,
    rumors: list[dict[str, Any]],
    debunks: list[dict[str, Any]],
) -> None:
    assert set(events["event"]) == set(DEBUNK_EVENTS)
    assert set(events["surface"]) <= set(SURFACES)
    assert (events["experiment"] == "").all() and (events["arm"] == "").all()
    confirmed = {r["rumor_id"] for r in rumors if r["status"] == "confirmed"}
    assert set(events["rumor_id"]) <= confirmed
    owner = {d["identifier"]: d["itemReviewed"]["identifier"] for d in debunks}
    published = {d["identifier"]: pd.Timestamp(d["datePublished"]) for d in debunks}
    assert (events["debunk_id"].map(owner) == events["rumor_id"]).all()
    assert (events["ts"] >= events["debunk_id"].map(published)).all()
    first_seen = rumor_rows.groupby(["user_id", "rumor_id"])["ts"].min()
    served = events[events["event"] == "served"].set_index(["user_id", "rumor_id"])
    assert served.index.is_unique, "one card per user and rumor"
    assert (served["ts"] > first_seen.reindex(served.index)).all()


def test_planted_format_preference_shows_in_clicks(world: Path, events: pd.DataFrame) -> None:
    truth = pq.read_table(world / "truth" / "users.parquet").to_pandas()
    assert len(truth) == 3000 and set(truth["preferred_format"]) == set(FORMATS)
    fmt = {
        d["identifier"]: d["additionalType"]
        for d in json.loads((world / "debunks.jsonld").read_text("utf-8"))
    }
    ev = events.merge(truth, on="user_id")
    ev["preferred"] = ev["debunk_id"].map(fmt) == ev["preferred_format"]
    shown = ev[ev["event"] == "impression"].groupby("preferred").size()
    clicked = ev[ev["event"] == "click"].groupby("preferred").size()
    ctr = clicked / shown
    assert shown.min() >= 50
    assert ctr[True] > 2 * ctr[False], ctr.to_dict()


def test_items_have_authors_and_rumor_items_none_of_the_authorities(world: Path) -> None:
    items = pq.read_table(world / "items.parquet").to_pandas()
    rumor_items = set(pq.read_table(world / "truth" / "rumor_items.parquet")["item_id"].to_pylist())
    by_kind = items.assign(rumor=items["item_id"].isin(rumor_items)).groupby("rumor")
    kinds = {k: set(g["author_type"]) for k, g in by_kind}
    assert kinds[True] <= {"user", "media"}  # rumor copies are never skipped by the matcher
    assert {"official", "platform", "fact_checker", "media"} <= kinds[False]
    assert (items["author_type"] == "user").mean() > 0.75
    assert author_types(np.arange(5), rumor=False).equals(author_types(np.arange(5), rumor=False))
