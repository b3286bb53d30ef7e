"""offline.report.reach: the A/B reach report, from hand-made logs (exact outcomes) and from
synthetic worlds with a planted effect (recovered inside its interval) or none (A/A false
positives)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from domain.experiments import Experiment, parse_arms
from offline.io.contracts import EVENT_SCHEMA, EXPOSURE_SCHEMA
from offline.report.outcomes import Outcomes
from offline.report.reach import ReachReport, analyze, reach_report
from offline.synth.world import PlantedExperiment, synthesize

D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def write_world(root: Path, exposures: list[tuple], events: list[tuple]) -> Path:
    """Rumors r1 (confirmed) and r2 (withdrawn); items i1 -> r1, i2 -> r2; logs and events."""
    rumors = [
        {"rumor_id": "r1", "claim": "c1", "category": "other", "severity": 3, "keywords": [],
         "verdict": "false", "status": "confirmed", "confirmed_at": "2026-09-30T00:00:00Z"},
        {"rumor_id": "r2", "claim": "c2", "category": "other", "severity": 3, "keywords": [],
         "verdict": "false", "status": "withdrawn", "confirmed_at": "2026-09-30T00:00:00Z"},
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    (root / "rumors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rumors))
    pq.write_table(
        pa.table({"item_id": ["i1", "i2"], "rumor_id": ["r1", "r2"]}),
        root / "tagged_items.parquet",
    )
    for name, schema, rows in (
        ("exposures", EXPOSURE_SCHEMA, exposures),
        ("debunk_events", EVENT_SCHEMA, events),
    ):
        by_day: dict[str, list[tuple]] = {}
        for row in rows:
            by_day.setdefault(row[2 if name == "exposures" else 5].date().isoformat(), []).append(
                row
            )
        for day, part in by_day.items():
            folder = root / name / f"dt={day}"
            folder.mkdir(parents=True, exist_ok=True)
            cols = list(zip(*part, strict=True))
            pq.write_table(pa.table(dict(zip(schema.names, cols, strict=True)), schema=schema),
                           folder / "part-0.parquet")  # fmt: skip
    return root


EXP = Experiment("x1", "s", parse_arms("control:0.5,treatment:0.5"), t(1, 0).timestamp(),
                 t(3, 0).timestamp())  # fmt: skip


def ev(user: str, kind: str, when: datetime, rumor: str = "r1") -> tuple:
    return (user, "d1", rumor, "feed", kind, when, "x1", EXP.arm_of(user).name)


def test_outcomes_follow_the_definitions_exactly(tmp_path: Path) -> None:
    world = write_world(
        tmp_path,
        exposures=[
            ("a", "i1", t(1, 8), "feed", "impression"),
            ("a", "i1", t(1, 12), "feed", "share"),  # a shares after seeing the debunk at 10
            ("b", "i1", t(1, 9), "group", "share"),  # b shared before the debunk, not after
            ("c", "i1", t(2, 9), "feed", "click"),  # c saw the debunk before and after
            ("d", "i1", t(1, 9), "feed", "impression"),  # d never sees a debunk
            ("e", "i2", t(1, 9), "feed", "impression"),  # withdrawn rumor: not counted
            ("f", "i9", t(1, 9), "feed", "impression"),  # untagged item
        ],
        events=[
            ev("a", "impression", t(1, 10)),
            ev("a", "click", t(1, 10, 1)),
            ev("b", "impression", t(1, 11)),
            ev("c", "impression", t(1, 7)),
            ev("c", "impression", t(2, 11)),
            ev("c", "impression", t(2, 10)),
            ev("e", "impression", t(1, 10), rumor="r2"),
        ],
    )
    report = reach_report(world, EXP, D1, D2, n_boot=50, progress=False)
    pairs = {
        r["user_id"]: r
        for r in report.outcomes.pairs.to_pylist()  # the per-pair table behind every number
    }
    assert sorted(pairs) == ["a", "b", "c", "d"]
    assert pairs["a"]["reached"] and pairs["a"]["debunked_ts"] == t(1, 10)
    assert pairs["a"]["reshared"] and pairs["a"]["clicks"] == 1
    assert pairs["b"]["reached"] and not pairs["b"]["reshared"]
    # One time rule: c's impression before its exposure counts neither in reach nor in CTR.
    assert pairs["c"]["debunked_ts"] == t(2, 10) and pairs["c"]["impressions"] == 2
    assert pairs["c"]["pre_impressions"] == 1 and pairs["a"]["pre_impressions"] == 0
    assert not pairs["d"]["reached"] and pairs["d"]["debunked_ts"] is None
    assert report.summary["pairs_seen_before_and_after"] == 1
    arms = report.arms.set_index("arm")
    assert arms["exposed_users"].sum() == 4 and arms["reached_users"].sum() == 3
    assert arms["impressions"].sum() == 4 and arms["clicks"].sum() == 1
    assert report.summary["event_scope"] == {
        "impressions_after_exposure": 4,  # a, b and c twice
        "impressions_before_exposure": 1,  # c at 7:00 the day before its exposure
        "impressions_outside_pairs": 1,  # e's, of the withdrawn rumor
        "impressions_without_rumor": 0,
        "clicks_after_exposure": 1,
        "clicks_before_exposure": 0,
        "clicks_outside_pairs": 0,
    }


def test_exposures_outside_the_experiment_window_do_not_count(tmp_path: Path) -> None:
    world = write_world(
        tmp_path,
        exposures=[
            ("a", "i1", t(1, 8), "feed", "impression"),
            ("b", "i1", t(2, 8), "feed", "impression"),
        ],  # fmt: skip
        events=[ev("a", "impression", t(1, 9))],
    )
    late = Experiment("x1", "s", EXP.arms, t(2, 0).timestamp(), t(3, 0).timestamp())
    report = reach_report(world, late, D1, D2, n_boot=0, progress=False)
    assert report.outcomes.pairs["user_id"].to_pylist() == ["b"]


@pytest.fixture(scope="module")
def ab_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ab")
    planted = PlantedExperiment(
        "ab1", "control:0.45,treatment:0.45,holdout:0.1:holdout", {"treatment": -0.375}
    )
    synthesize(out, users=30_000, days=6, seed=21, experiment=planted)
    return out


def test_the_report_recovers_a_planted_effect_inside_its_interval(ab_world: Path) -> None:
    planted = json.loads((ab_world / "experiment.json").read_text())["planted"]
    expected = planted["expected_relative_reach"]["treatment"] - 1  # serving 0.5 vs 0.8
    report = reach_report(ab_world, ab_world / "experiment.json", D1, date(2026, 10, 6),
                          n_boot=50, progress=False)  # fmt: skip
    row = report.comparisons.set_index(["arm", "metric"]).loc[("treatment", "pair_reach")]
    assert row["rel_lift_lo"] <= expected <= row["rel_lift_hi"]
    assert row["p_value"] < 0.001
    card = report.scorecard.set_index(["arm", "metric"])
    assert card.loc[("treatment", "pair_reach"), "planted_rel_lift"] == pytest.approx(expected)
    assert card.loc[("treatment", "pair_reach"), "rel_lift"] == row["rel_lift"]
    assert report.headline.startswith("Treatment lowered user reach from ")
    assert report.headline.endswith("p < 0.001).")
    arms = report.arms.set_index("arm")
    assert arms.loc["holdout", "reached_users"] == 0
    assert arms.loc["control", "user_reach_lo"] < arms.loc["control", "user_reach"]
    assert not report.srm["mismatch"] and not report.warnings


def test_an_aa_split_finds_no_effect_at_the_stated_rate(ab_world: Path) -> None:
    """Re-randomising the same users with 200 salts gives 200 A/A splits (the world served both
    halves alike): p < 0.05 should come up about 5% of the time."""
    base = reach_report(ab_world, ab_world / "experiment.json", D1, date(2026, 10, 6),
                        n_boot=0, progress=False)  # fmt: skip
    control = base.outcomes.pairs.filter(
        pc.is_in(base.outcomes.pairs["user_id"], value_set=_users_in(base, "control"))
    )
    outcomes = Outcomes(control, base.outcomes.labels.slice(0, 0))
    p_values = []
    for salt in range(200):
        aa = Experiment("aa", f"salt-{salt}", parse_arms("a:0.5,b:0.5"), EXP.start, EXP.end)
        cmp = analyze(outcomes, aa, D1, date(2026, 10, 6), n_boot=0).comparisons
        p_values.append(cmp.set_index("metric").loc["pair_reach", "p_value"])
    rate = float(np.mean(np.array(p_values) < 0.05))
    assert 0.015 <= rate <= 0.09, rate


def _users_in(report: ReachReport, arm: str) -> pa.Array:
    users = np.unique(report.outcomes.pairs["user_id"].to_numpy(zero_copy_only=False))
    names = np.array([a.name for a in report.experiment.arms])
    return pa.array(users[names[report.experiment.arm_indexes(users.tolist())] == arm])


def test_a_sample_ratio_mismatch_is_flagged_loudly(ab_world: Path, tmp_path: Path) -> None:
    base = reach_report(ab_world, ab_world / "experiment.json", D1, date(2026, 10, 6),
                        n_boot=0, progress=False)  # fmt: skip
    treated = _users_in(base, "treatment")
    pairs = base.outcomes.pairs
    last_digit = pc.utf8_slice_codeunits(pairs["user_id"], 8, 9)
    # A logging loss in one arm: 30% of the treatment users' exposures never arrive.
    lost = pc.and_(pc.is_in(pairs["user_id"], value_set=treated),
                   pc.is_in(last_digit, value_set=pa.array(["1", "4", "7"])))  # fmt: skip
    broken = Outcomes(pairs.filter(pc.invert(lost)), base.outcomes.labels)
    report = analyze(broken, base.experiment, D1, date(2026, 10, 6), n_boot=0)
    assert report.srm["mismatch"] and report.srm["p_value"] < 0.001
    assert report.warnings[0].startswith("SAMPLE RATIO MISMATCH")
    report.write(tmp_path / "out")
    assert 'class="alarm"' in (tmp_path / "out" / "report.html").read_text()


def test_the_report_is_written_atomically_as_tables_and_one_html_page(
    ab_world: Path, tmp_path: Path
) -> None:
    report = reach_report(ab_world, ab_world / "experiment.json", D1, date(2026, 10, 6),
                          n_boot=20, progress=False)  # fmt: skip
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.csv").write_text("old")
    report.write(out)
    names = sorted(p.name for p in out.iterdir())
    assert "stale.csv" not in names and "report.html" in names and "summary.json" in names
    for table in ("arms", "comparisons", "rumors", "daily", "time_to_debunk"):
        assert pq.read_table(out / f"{table}.parquet").num_rows == len(getattr(report, table))
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "http" not in page.replace(
        "http-equiv", ""
    )
    assert not list(tmp_path.glob(".report.*"))  # nothing left aside
    assert json.loads((out / "summary.json").read_text())["experiment"]["name"] == "ab1"


def test_push_notifications_count_as_reach_and_per_surface(tmp_path: Path) -> None:
    def push(user: str, kind: str, when: datetime) -> tuple:
        return (user, "d1", "r1", "push", kind, when, "x1", EXP.arm_of(user).name)

    world = write_world(
        tmp_path,
        exposures=[
            ("a", "i1", t(1, 8), "feed", "share"),  # notified, opened the push
            ("b", "i1", t(1, 8), "group", "comment"),  # notified, never displayed
            ("c", "i1", t(1, 8), "feed", "impression"),  # saw the debunk in the feed
            ("d", "i1", t(1, 8), "feed", "share"),  # notified before the exposure: not reach
        ],
        events=[
            push("a", "served", t(1, 9)),
            push("a", "impression", t(1, 9, 1)),
            push("a", "click", t(1, 9, 2)),
            push("b", "served", t(1, 9)),
            ev("c", "impression", t(1, 10)),
            push("d", "impression", t(1, 7)),
        ],
    )
    report = reach_report(world, EXP, D1, D2, n_boot=0, progress=False)
    pairs = {r["user_id"]: r for r in report.outcomes.pairs.to_pylist()}
    assert pairs["a"]["reached"] and pairs["a"]["debunked_ts"] == t(1, 9, 1)
    assert pairs["a"]["clicks"] == 1 and not pairs["b"]["reached"] and not pairs["d"]["reached"]
    assert report.arms["reached_users"].sum() == 2
    by_surface = report.summary["reach_by_surface"]
    assert by_surface["push"] == {"served": 2, "impressions": 1, "clicks": 1, "reached_pairs": 1,
                                  "reached_users": 1}  # fmt: skip
    assert by_surface["feed"]["reached_users"] == 1 and by_surface["group"]["reached_pairs"] == 0
    written = json.loads((report.write(tmp_path / "out") / "summary.json").read_text())
    assert written["reach_by_surface"]["push"]["reached_users"] == 1
