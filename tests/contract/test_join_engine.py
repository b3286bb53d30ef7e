"""The join-engine contract: what any JoinEngine must produce, checked against DuckDB's SQL.

Every test runs once per engine in ENGINES and compares it with the reference engine (and with
hand-written expectations, so that the reference is checked too): the per-partition partial
aggregates, the merged state, the audience, the rejects (same rows, same reasons) and the summary
counts. Adding an engine is adding its name to ENGINES.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.io.logs import LogSchemaError
from offline.io.rejects import RejectWriter
from offline.join.contracts import STATE_SCHEMA, JoinSummary, Partial, prepare_tags
from offline.join.engine import ENGINE_NAMES, JoinEngine, engine_named, join_exposures
from offline.nightly.audience import build_audience
from offline.nightly.state import update_state
from tests.fixtures.logs import by_pair, t, tags, write_logs

ENGINES = ["local", "duckdb", "spark"]
REFERENCE = "duckdb"
TAGS = tags(("i1", "rA"), ("i2", "rA"), ("i3", "rB"), ("i3", "rC"), ("i4", "rD"))
ROWS = [
    ("u1", "i1", t(1, 8), "feed", "impression"),
    ("u1", "i2", t(2, 9), "group", "share"),
    ("u1", "i1", t(3, 7), "search", "click"),
    ("u2", "i3", t(2, 1), "comment", "like"),
    ("u2", "i3", t(3, 4), "push", "share"),
    ("u2", "i9", t(2, 2), "feed", "share"),  # untagged item: not an exposure
    ("u3", "i4", t(1, 2), "other", "comment"),
    ("u3", "i9", t(1, 3), "feed", "impression"),
]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> JoinEngine:
    if request.param == "spark":
        request.getfixturevalue("spark")  # the run's one session; skips when Spark cannot run
    return engine_named(request.param)


@pytest.fixture
def reference() -> JoinEngine:
    return engine_named(REFERENCE)


@dataclass
class Outcome:
    """Everything an engine produced for one set of log files."""

    partial: Partial
    state: pa.Table
    audience: pa.Table
    rejects: list[dict]
    summary: JoinSummary


def run_join(engine: JoinEngine, files: list[Path], tag_table: pa.Table, out: Path) -> Outcome:
    """Scan ``files``, merge the partial into a state, build the audience, keep the rejects."""
    writer = RejectWriter(out / f"rejects-{engine.name}.parquet")
    summary = JoinSummary()
    partial = engine.scan(files, prepare_tags(tag_table), summary, sink=writer.add)
    written = writer.close()
    merged = engine.merge_state([partial])
    rejects = pq.read_table(written).to_pylist() if written else []
    return Outcome(
        partial,
        merged.exposures,
        build_audience(merged.exposures, merged.surfaces),
        sorted(rejects, key=lambda r: sorted((k, str(v)) for k, v in r.items())),
        summary,
    )


def sorted_rows(table: pa.Table, keys: list[str]) -> list[dict]:
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def assert_same(got: Outcome, want: Outcome) -> None:
    """Same partial aggregates (in any row order), state, audience, rejects and counts."""
    assert got.partial.pairs.schema == want.partial.pairs.schema
    keys = ["user_id", "rumor_id"]
    assert sorted_rows(got.partial.pairs, keys) == sorted_rows(want.partial.pairs, keys)
    surface_keys = ["rumor_id", "surface"]
    assert sorted_rows(got.partial.surfaces, surface_keys) == sorted_rows(
        want.partial.surfaces, surface_keys
    )
    assert got.state.schema == want.state.schema == STATE_SCHEMA
    assert got.state.to_pylist() == want.state.to_pylist()
    assert got.audience.equals(want.audience)
    assert got.rejects == want.rejects
    assert got.summary.as_dict() == want.summary.as_dict()


def log_files(logs: Path) -> list[Path]:
    return sorted(logs.glob("dt=*/*.parquet"))


def test_several_partitions_aggregate_per_user_and_rumor(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path / "logs", ROWS)
    got = run_join(engine, log_files(logs), TAGS, tmp_path)
    assert_same(got, run_join(reference, log_files(logs), TAGS, tmp_path))
    pairs = by_pair(got.state)
    assert set(pairs) == {("u1", "rA"), ("u2", "rB"), ("u2", "rC"), ("u3", "rD")}
    a = pairs[("u1", "rA")]
    assert (a["exposures"], a["first_ts"], a["last_ts"]) == (3, t(1, 8), t(3, 7))
    assert (a["strongest_action"], a["shared"], a["surface_mask"]) == ("share", True, 0b1011)
    assert pairs[("u2", "rB")]["first_share_ts"] == pairs[("u2", "rC")]["last_share_ts"] == t(3, 4)
    assert pairs[("u3", "rD")]["surface_mask"] == 0b100000  # other
    assert got.summary.files == 3 and got.summary.rows_read == 8
    assert got.summary.rows_kept == 6  # the row on i3 counts once, for two rumors
    audience = {r["rumor_id"]: r for r in got.audience.to_pylist()}
    assert audience["rA"]["exposures_feed"] == audience["rA"]["exposures_search"] == 1
    assert audience["rB"]["earliest_sharers"] == ["u2"]


def test_bad_rows_are_rejected_with_the_first_failing_reason(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    logs = write_logs(
        tmp_path / "logs",
        [
            ("u1", "i1", t(1, 1), "feed", "impression"),
            ("", "i1", t(1, 2), "feed", "impression"),
            (None, "i1", t(1, 3), "feed", "impression"),
            ("u2", "", t(1, 4), "feed", "click"),
            ("u2", None, t(1, 5), "feed", "click"),
            ("u3", "i1", t(1, 6), "feed", "retweet"),
            ("u3", "i1", t(1, 7), "feed", None),
            ("u4", "i1", t(1, 8), "billboard", "click"),
            ("", None, t(1, 9), "billboard", "retweet"),  # every check fails: the first counts
        ],
    )
    write_logs(logs, [("u5", "i2", None, "feed", "like")], name="nots.parquet")  # missing ts
    got = run_join(engine, log_files(logs), TAGS, tmp_path)
    assert_same(got, run_join(reference, log_files(logs), TAGS, tmp_path))
    assert got.summary.rows_rejected == {
        "null_or_empty_user_id": 3,
        "null_or_empty_item_id": 2,
        "null_ts": 1,
        "unknown_action": 2,
        "unknown_surface": 1,
    }
    assert by_pair(got.state).keys() == {("u1", "rA")}
    first = next(r for r in got.rejects if r["surface"] == "billboard" and r["user_id"] == "")
    assert (first["reason"], first["action"]) == ("null_or_empty_user_id", "retweet")
    assert {r["file"].rsplit("/", 1)[1] for r in got.rejects} == {"part-0.parquet", "nots.parquet"}


def test_timestamps_as_iso_text_are_parsed_and_bad_ones_rejected(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    folder = tmp_path / "logs" / "dt=2026-10-01"
    folder.mkdir(parents=True)
    stamps = ["2026-10-01T05:00:00Z", "2026-10-01 06:30:00+02:00", "2026-10-01T07:00:00",
              "yesterday", "", None, "infinity"]  # fmt: skip
    pq.write_table(
        pa.table(
            {
                "user_id": [f"u{i}" for i in range(len(stamps))],
                "item_id": ["i1"] * len(stamps),
                "ts": pa.array(stamps, pa.string()),
                "surface": ["feed"] * len(stamps),
                "action": ["click"] * len(stamps),
            }
        ),
        folder / "text.parquet",
    )
    files = log_files(tmp_path / "logs")
    got = run_join(engine, files, TAGS, tmp_path)
    assert_same(got, run_join(reference, files, TAGS, tmp_path))
    assert got.summary.rows_rejected == {"unparseable_ts": 4}
    assert sorted(r["ts"] or "" for r in got.rejects) == ["", "", "infinity", "yesterday"]
    pairs = by_pair(got.state)
    half_past_four = t(1, 4) + timedelta(minutes=30)  # 06:30 at +02:00
    assert [pairs[(f"u{i}", "rA")]["first_ts"] for i in range(3)] == [
        t(1, 5), half_past_four, t(1, 7)
    ]  # fmt: skip


def test_an_unreadable_schema_fails_naming_file_and_column_before_reading(
    engine: JoinEngine, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path / "logs", ROWS)
    bad = logs / "dt=2026-10-03" / "broken.parquet"
    columns = {"user_id": ["u1"], "item_id": ["i1"], "surface": ["feed"], "action": ["click"]}
    pq.write_table(pa.table({**columns, "ts": [5]}), bad)
    seen: list[int] = []
    rejected: list[str] = []

    def scan() -> None:
        engine.scan(
            log_files(logs), prepare_tags(TAGS), JoinSummary(),
            sink=lambda rows, reason, path: rejected.append(reason), on_batch=seen.append,
        )  # fmt: skip

    with pytest.raises(LogSchemaError, match=r"broken.parquet: column 'ts' has type int64"):
        scan()
    pq.write_table(pa.table(columns), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: missing column 'ts'"):
        scan()
    pq.write_table(pa.table({**columns, "ts": [t(3)], "user_id": [7]}), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: column 'user_id' has type int64"):
        scan()
    bad.write_text("not parquet")
    with pytest.raises(LogSchemaError, match=r"broken.parquet: not a readable Parquet file"):
        scan()
    assert seen == [] and rejected == []  # nothing was read before the check failed


def test_skewed_users_aggregate_the_same(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    """One user with most of the rows (a bot, a hot account) among many light users."""
    surfaces = ["feed", "search", "comment", "group", "push", "other"]
    actions = ["impression", "click", "like", "comment", "share"]
    heavy = [("bot", f"i{1 + k % 9}", t(1 + k % 3, k % 24), surfaces[k % 6], actions[k % 5])
             for k in range(4000)]  # fmt: skip
    light = [(f"u{k}", f"i{1 + k % 5}", t(2, k % 24), "feed", "impression") for k in range(300)]
    logs = write_logs(tmp_path / "logs", heavy + light)
    got = run_join(engine, log_files(logs), TAGS, tmp_path)
    assert_same(got, run_join(reference, log_files(logs), TAGS, tmp_path))
    bot = by_pair(got.state)[("bot", "rA")]
    assert bot["exposures"] == sum(1 for k in range(4000) if k % 9 in (0, 1))
    assert bot["surface_mask"] == 0b011011 and bot["shared"] is True  # feed search group push


def test_an_empty_tag_set_gives_an_empty_state_and_still_rejects(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path / "logs", [*ROWS, ("", "i1", t(1, 1), "feed", "click")])
    none = tags()
    got = run_join(engine, log_files(logs), none, tmp_path)
    assert_same(got, run_join(reference, log_files(logs), none, tmp_path))
    assert got.state.num_rows == got.audience.num_rows == 0
    assert got.summary.rows_read == 9 and got.summary.rows_kept == 0
    assert got.summary.rows_rejected == {"null_or_empty_user_id": 1}


def test_join_exposures_equals_the_reference(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path / "logs", ROWS)
    dates = ["2026-10-01", "2026-10-03"]
    got, summary = join_exposures(logs, TAGS, dates=dates, engine=engine)
    want, expected = join_exposures(logs, TAGS, dates=dates, engine=reference)
    assert got.equals(want) and got.num_rows == 4
    assert (summary.partitions, summary.pairs, summary.rows_read) == (2, 4, 5)
    assert {k: v for k, v in summary.as_dict().items() if k != "seconds"} == {
        k: v for k, v in expected.as_dict().items() if k != "seconds"
    }


def test_the_streamed_scan_state_equals_the_merged_scan(engine: JoinEngine, tmp_path: Path) -> None:
    """scan_state (what write_exposures writes chunk by chunk) gives merge_state's rows in the
    same order and the same counts, a held scan's buckets read group by group."""
    logs = write_logs(tmp_path / "logs", ROWS)
    _, files = engine.log_files(logs)
    summary, streamed = JoinSummary(), JoinSummary()
    want = engine.merge_state([engine.scan(files, prepare_tags(TAGS), summary)])
    with engine.scan_state(files, prepare_tags(TAGS), streamed) as state:
        chunks = list(state.chunks())
        surfaces = state.surfaces
    got = pa.concat_tables(chunks) if chunks else STATE_SCHEMA.empty_table()
    assert got.equals(want.exposures) and got.num_rows == 4
    order = [("rumor_id", "ascending"), ("surface", "ascending")]
    assert surfaces.sort_by(order).equals(want.surfaces.sort_by(order))
    assert streamed.as_dict() | {"seconds": 0} == summary.as_dict() | {"seconds": 0}


# --- through the incremental state ----------------------------------------------------------

STATE_ROWS = [
    ("u1", "i1", t(1, 8), "feed", "impression"),
    ("u1", "i1", t(2, 9), "group", "share"),
    ("u2", "i3", t(2, 3), "search", "click"),
    ("u3", "i1", t(3, 1), "feed", "share"),
    ("u3", "i9", t(3, 2), "feed", "share"),
    ("", "i1", t(3, 5), "feed", "click"),
]


def state_outputs(engine: JoinEngine, logs: Path, state: Path, day: int, **kw: object) -> dict:
    """One nightly state update: its summary, exposures, audience and every rejects row."""
    run = update_state(logs, kw.pop("tags", TAGS), state, date(2026, 10, day), engine=engine, **kw)
    rejects = [r for f in sorted(state.glob("rejects/*/*.parquet")) for r in pq.read_table(f)
               .to_pylist()]  # fmt: skip
    summary = {k: run.summary[k] for k in ("window", "partitions", "tags", "pairs")}
    for part in ("join", "backfill"):
        summary[part] = {k: v for k, v in run.summary[part].items() if k != "seconds"}
    return {
        "summary": summary,
        "exposures": pq.read_table(run.exposures).to_pylist(),
        "audience": pq.read_table(run.audience).to_pylist(),
        "rejects": sorted(rejects, key=lambda r: (r["reason"], r["user_id"] or "", r["ts"])),
    }


def test_the_state_update_matches_the_reference_night_after_night(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    """A late partition, a new tag (back-filled), a removed tag and a withdrawn rumor, each
    applied to both engines' state folders over the same logs."""
    logs = write_logs(tmp_path / "logs", STATE_ROWS)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"

    def night(day: int, **kw: object) -> dict:
        got = state_outputs(engine, logs, ours, day, **kw)
        assert got == state_outputs(reference, logs, theirs, day, **kw)
        return got

    first = night(2)
    assert first["summary"]["partitions"]["scanned"] == ["2026-10-01", "2026-10-02"]
    write_logs(logs, [("u9", "i3", t(1, 5), "comment", "like")], name="late.parquet")
    late = night(3)
    assert late["summary"]["partitions"]["scanned"] == ["2026-10-01", "2026-10-03"]
    assert ("u9", "rB") in {(r["user_id"], r["rumor_id"]) for r in late["exposures"]}
    assert [r["reason"] for r in late["rejects"]] == ["null_or_empty_user_id"]

    more = tags(*zip(TAGS["item_id"].to_pylist(), TAGS["rumor_id"].to_pylist(), strict=True),
                ("i9", "rE"))  # fmt: skip
    added = night(3, tags=more)
    assert added["summary"]["partitions"]["backfilled"] == ["2026-10-01", "2026-10-02",
                                                            "2026-10-03"]  # fmt: skip
    assert added["summary"]["backfill"]["rows_kept"] == 1
    assert {r["user_id"] for r in added["exposures"] if r["rumor_id"] == "rE"} == {"u3"}
    full, _ = join_exposures(logs, more, engine=engine)
    assert added["exposures"] == full.to_pylist()

    fewer = tags(("i1", "rA"), ("i9", "rE"))
    removed = night(3, tags=fewer)
    assert removed["summary"]["tags"] == {"added": 0, "removed": 4}
    assert {r["rumor_id"] for r in removed["exposures"]} == {"rA", "rE"}

    withdrawn = night(3, tags=fewer, confirmed={"rE"})
    assert {r["rumor_id"] for r in withdrawn["exposures"]} == {"rE"}
    assert [r["rumor_id"] for r in withdrawn["audience"]] == ["rE"]


def test_partitions_scanned_by_one_engine_merge_in_another(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    """The per-partition aggregates are a shared format: a state folder can change engines."""
    logs = write_logs(tmp_path / "logs", STATE_ROWS)
    state_outputs(engine, logs, tmp_path / "mixed", 2)
    mixed = state_outputs(reference, logs, tmp_path / "mixed", 3)
    assert mixed["summary"]["partitions"]["unchanged"] == ["2026-10-01", "2026-10-02"]
    assert mixed == state_outputs(reference, logs, tmp_path / "reference", 3) | {
        "summary": mixed["summary"]
    }
    full, _ = join_exposures(logs, TAGS, engine=reference)
    assert mixed["exposures"] == full.to_pylist()


# --- tag scores ------------------------------------------------------------------------------

SCORED_TAGS = pa.table(
    {
        "item_id": ["i1", "i2", "i3", "i3", "i5"],
        "rumor_id": ["rA", "rA", "rB", "rC", "rB"],
        "source": ["manual", "matched", "matched", "matched", "matched"],
        "score": [0.2, 0.6, 0.87, 0.5, 0.7],  # a manual tag is 1.0 whatever its score says
    }
)
SCORED_ROWS = [
    ("u1", "i2", t(1, 1), "feed", "share"),
    ("u1", "i1", t(3, 1), "feed", "impression"),  # a hand-tagged item too, two days later
    ("u4", "i2", t(1, 2), "feed", "click"),  # only through the matched item
    ("u2", "i3", t(2, 3), "comment", "like"),  # one item, two rumors, two scores
    ("u5", "i5", t(1, 4), "feed", "impression"),
    ("u5", "i3", t(3, 4), "search", "click"),  # two matched items: the better score
]


def scores_of(state: pa.Table) -> dict[tuple[str, str], float]:
    """(user, rumor) -> tag score, rounded past float32's noise."""
    return {k: round(r["tag_score"], 6) for k, r in by_pair(state).items()}


def test_the_tag_score_is_the_best_of_the_items_a_user_met(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    """A hand-tagged item (and one of the same rumor matched) gives 1.0; only matched items
    give the best of their scores; across partitions and in the partials alike."""
    logs = write_logs(tmp_path / "logs", SCORED_ROWS)
    got = run_join(engine, log_files(logs), SCORED_TAGS, tmp_path)
    assert_same(got, run_join(reference, log_files(logs), SCORED_TAGS, tmp_path))
    assert scores_of(got.state) == {
        ("u1", "rA"): 1.0, ("u4", "rA"): 0.6, ("u2", "rB"): 0.87, ("u2", "rC"): 0.5,
        ("u5", "rB"): 0.87, ("u5", "rC"): 0.5,
    }  # fmt: skip
    night = state_outputs(engine, logs, tmp_path / "state", 3, tags=SCORED_TAGS)
    assert scores_of(pa.Table.from_pylist(night["exposures"])) == scores_of(got.state)


def _strip_tag_scores(state: Path) -> None:
    """Make a state folder look written before tag scores: no tag_score in any part file."""
    for f in [*state.glob("parts/dt=*/pairs-*.parquet"), *state.glob("parts/tags-*.parquet")]:
        table = pq.read_table(f)
        pq.write_table(table.drop_columns(["tag_score"]), f)


def test_partials_stored_before_tag_scores_read_as_hand_tagged_then_rescan(
    engine: JoinEngine, reference: JoinEngine, tmp_path: Path
) -> None:
    """Stored pair aggregates and tag sets without tag_score load as 1.0 (a hand tag's); a
    matched tag's real score then shows as a changed tag, and the window is rescanned."""
    logs = write_logs(tmp_path / "logs", SCORED_ROWS)
    state = tmp_path / "state"
    state_outputs(engine, logs, state, 3)
    _strip_tag_scores(state)
    again = state_outputs(engine, logs, state, 3)
    assert again["summary"]["partitions"]["unchanged"] == ["2026-10-01", "2026-10-02",
                                                           "2026-10-03"]  # fmt: skip
    assert set(scores_of(pa.Table.from_pylist(again["exposures"])).values()) == {1.0}
    scored = state_outputs(engine, logs, state, 3, tags=SCORED_TAGS)
    assert scored["summary"]["partitions"]["scanned"] == ["2026-10-01", "2026-10-02",
                                                          "2026-10-03"]  # fmt: skip
    fresh = state_outputs(reference, logs, tmp_path / "fresh", 3, tags=SCORED_TAGS)
    assert scored["exposures"] == fresh["exposures"]
    assert scores_of(pa.Table.from_pylist(scored["exposures"]))[("u4", "rA")] == 0.6


def test_rows_at_or_after_the_watermark_are_left_to_the_live_layer(
    engine: JoinEngine, tmp_path: Path
) -> None:
    rows = [*ROWS, ("u1", "i1", t(3, 9), "feed", "share"), ("u1", "i1", t(3, 8), "feed", "like"),
            ("", "i1", t(3, 9), "feed", "click")]  # fmt: skip  # a bad row is still rejected
    logs = write_logs(tmp_path / "logs", rows)
    summary = JoinSummary()
    partial = engine.scan(log_files(logs), prepare_tags(TAGS), summary, before=t(3, 8))
    state = {
        (r["user_id"], r["rumor_id"]): r
        for r in engine.merge_state([partial]).exposures.to_pylist()
    }
    assert state[("u1", "rA")]["exposures"] == 3, "t(3, 8) and t(3, 9) are the live layer's"
    assert state[("u2", "rB")]["exposures"] == 2 and ("u3", "rD") in state
    assert summary.as_dict()["rows_rejected"] == {"null_or_empty_user_id": 1}
    assert summary.rows_kept == 6


def test_every_registered_engine_is_under_contract() -> None:
    assert sorted(ENGINES) == sorted(ENGINE_NAMES)
    assert all(engine_named(name).name == name for name in ENGINE_NAMES)


def test_an_unknown_engine_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown join engine 'spork': expected one of local"):
        engine_named("spork")
