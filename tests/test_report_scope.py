"""The reach report's scope, time rule, holdout semantics, scorecard and page, on small hand-made
worlds whose every count is known (issue 22)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from domain.experiments import Experiment, parse_arms
from offline.report import formatting as fmt
from offline.report import stats
from offline.report.html import render
from offline.report.metrics import HOLDOUT_NOTE
from offline.report.reach import ReachReport, reach_report
from offline.report.scorecard import headline
from tests.test_reach import D1, D2, EXP, ev, t, write_world

HELD = Experiment("x1", "s", parse_arms("control:0.4,treatment:0.4,holdout:0.2:holdout"),
                  t(1, 0).timestamp(), t(3, 0).timestamp())  # fmt: skip


def _users(exp: Experiment, arm: str, n: int) -> list[str]:
    """The first ``n`` ids u0, u1, ... that the experiment's hash puts in ``arm``."""
    found = [f"u{i}" for i in range(2000) if exp.arm_of(f"u{i}").name == arm]
    return found[:n]


def _held_event(user: str, kind: str, when: datetime) -> tuple:
    """A debunk event of r1 labelled with the HELD experiment's arm of ``user``."""
    return (user, "d1", "r1", "feed", kind, when, "x1", HELD.arm_of(user).name)


def test_scope_counts_and_the_one_time_rule_are_exact(tmp_path: Path) -> None:
    world = write_world(
        tmp_path,
        exposures=[
            ("a", "i1", t(1, 8), "feed", "impression"),
            ("b", "i1", t(1, 12), "feed", "impression"),  # b saw and clicked the debunk first
            ("f", "i9", t(1, 8), "feed", "impression"),  # untagged variant: f is not exposed
        ],
        events=[
            ev("a", "impression", t(1, 9)),
            ev("a", "click", t(1, 9, 1)),
            ev("b", "impression", t(1, 10)),  # before b's exposure
            ev("b", "click", t(1, 10, 1)),  # before b's exposure
            ev("b", "impression", t(1, 13)),
            ev("f", "impression", t(1, 9)),  # outside the exposed pairs
            ev("f", "click", t(1, 9, 1)),
            ("a", "d1", "", "feed", "impression", t(1, 9), "x1", EXP.arm_of("a").name),  # no rumor
            # two events of a labelled with the other arm than the hash's
            *[
                (
                    "a",
                    "d1",
                    "r1",
                    "feed",
                    kind,
                    t(1, 9, 5),
                    "x1",
                    "treatment" if EXP.arm_of("a").name == "control" else "control",
                )
                for kind in ("served", "impression")
            ],
        ],  # fmt: skip
    )
    report = reach_report(world, EXP, D1, D2, n_boot=0, progress=False)
    assert report.summary["event_scope"] == {
        "impressions_after_exposure": 3,  # a at 9:00 and 9:05, b at 13:00
        "impressions_before_exposure": 1,
        "impressions_outside_pairs": 1,
        "impressions_without_rumor": 1,
        "clicks_after_exposure": 1,
        "clicks_before_exposure": 1,
        "clicks_outside_pairs": 1,
    }
    assert report.summary["label_mismatched_events"] == 2
    assert report.summary["label_mismatched_users"] == 1
    assert "2 events" in report.warnings[0]
    pairs = {r["user_id"]: r for r in report.outcomes.pairs.to_pylist()}
    assert (pairs["b"]["impressions"], pairs["b"]["clicks"]) == (1, 0)
    assert (pairs["b"]["pre_impressions"], pairs["b"]["pre_clicks"]) == (1, 1)
    arms = report.arms
    assert arms["clicks"].sum() == 1 and arms["impressions"].sum() == 3  # CTR: the same rule
    page = render(report)
    scope = page[page.index('id="scope"') :]
    assert "20.0% of the debunk impressions (1 of 5)" in scope


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> ReachReport:
    """A world with a holdout: 10 users per arm exposed; 6 of control's and 8 of treatment's
    see the debunk after their exposure, holdout users never do."""
    users = {arm: _users(HELD, arm, 10) for arm in ("control", "treatment", "holdout")}
    exposures = [(u, "i1", t(1, 8), "feed", "impression") for us in users.values() for u in us]
    events = [_held_event(u, "impression", t(1, 9)) for u in users["control"][:6]]
    events += [_held_event(u, "impression", t(1, 9)) for u in users["treatment"][:8]]
    events += [_held_event(users["treatment"][0], "click", t(1, 9, 1))]
    world = write_world(tmp_path_factory.mktemp("held"), exposures, events)
    return reach_report(world, HELD, D1, D2, n_boot=20, progress=False)


def test_a_holdout_is_minus_100_percent_by_design_with_a_wilson_interval(held: ReachReport) -> None:
    cmp = held.comparisons.set_index(["arm", "metric"])
    for metric in ("user_reach", "pair_reach"):
        row = cmp.loc[("holdout", metric)]
        assert (row["rel_lift"], row["rel_lift_lo"], row["rel_lift_hi"]) == (-1.0, -1.0, -1.0)
        assert row["note"] == HOLDOUT_NOTE
    assert cmp.loc[("holdout", "ctr"), "note"] == "does not apply: holdout has no impressions"
    assert cmp.loc[("treatment", "user_reach"), "note"] == ""
    arms = held.arms.set_index("arm")
    _, wilson_hi = stats.wilson_interval(np.array(0), np.array(10), 0.05)
    assert arms.loc["holdout", "pair_reach_lo"] == 0.0
    assert arms.loc["holdout", "pair_reach_hi"] == pytest.approx(float(wilson_hi))
    assert arms.loc["holdout", "pair_reach_hi"] == pytest.approx(
        arms.loc["holdout", "user_reach_hi"]
    )
    # a non-degenerate ratio keeps its delta-method interval
    treated = arms.loc["treatment"]
    assert treated["pair_reach_hi"] - treated["pair_reach"] == pytest.approx(
        treated["pair_reach"] - treated["pair_reach_lo"]
    )


def test_the_scorecard_carries_the_tables_numbers_and_says_what_does_not_apply(
    held: ReachReport,
) -> None:
    card = held.scorecard.set_index(["arm", "metric"])
    arms = held.arms.set_index("arm")
    cmp = held.comparisons.set_index(["arm", "metric"])
    assert list(held.scorecard["arm"].unique()) == ["control", "treatment", "holdout"]
    assert card.loc[("treatment", "user_reach"), "value"] == arms.loc["treatment", "user_reach"]
    assert (
        card.loc[("treatment", "user_reach"), "p_value"]
        == cmp.loc[("treatment", "user_reach"), "p_value"]
    )
    assert card.loc[("holdout", "hours_to_debunk_p50"), "note"] == (
        "does not apply: holdout has no reached pairs"
    )
    assert card.loc[("control", "user_reach"), "significance"] == "the baseline"
    p = cmp.loc[("treatment", "user_reach"), "p_value"]
    assert held.headline == (
        f"Treatment changed user reach from 60.0% to 80.0% (+20.0 pp, +33%, p = {p:.2f}), "
        "not a significant difference."
    )


def test_the_page_keeps_the_contract_and_shows_no_raw_noise(held: ReachReport) -> None:
    page = render(held)
    for anchor in ('id="headline"', 'id="scorecard"', 'id="scope"'):
        assert page.count(anchor) == 1
    assert "http" not in page and "<script" not in page
    tables = page.count("<table")
    assert tables == page.count("<caption>") == page.count('<div class="table-frame"><table>')
    assert page.count('<img class="chart"') == 2 and '<svg class="chart"' in page
    text = re.sub(r"<[^>]+>", " ", page)
    assert not re.search(r"\bnan\b|\bNaN\b|e-\d\d|\{'", text)
    assert "control: control" not in text
    assert "does not apply" in text and "−100%" in text


def test_daily_user_reach_adds_up_to_the_arms(held: ReachReport) -> None:
    daily = held.daily.groupby("arm")[["exposed_users", "reached_users"]].sum()
    arms = held.arms.set_index("arm")
    for arm in ("control", "treatment", "holdout"):
        assert daily.loc[arm, "exposed_users"] == arms.loc[arm, "exposed_users"]
        assert daily.loc[arm, "reached_users"] == arms.loc[arm, "reached_users"]


def test_numbers_read_as_people_write_them() -> None:
    assert fmt.pct(0.6777) == "67.8%" and fmt.pct(float("nan")) == fmt.DASH
    assert fmt.p_value(0.0) == "p < 0.001" and fmt.p_value(3.506e-19) == "p < 0.001"
    assert fmt.p_value(0.0431) == "p = 0.043" and fmt.p_value(0.41) == "p = 0.41"
    assert fmt.points(8.674e-19) == "+0.0 pp" and fmt.points(-0.151) == "−15.1 pp"
    assert fmt.lift(0.223) == "+22%" and fmt.lift(-1.0) == "−100%" and fmt.lift(0.012) == "+1.2%"
    assert fmt.hours(0.5) == "30 min" and fmt.hours(3.44) == "3.4 h" and fmt.hours(72) == "3.0 days"
    assert fmt.interval(0.0, 0.014) == "[0.0%, 1.4%]" and fmt.count(13512) == "13,512"


def test_the_headline_warns_when_the_sample_ratio_is_off(held: ReachReport) -> None:
    line = headline(held.scorecard, {"mismatch": True})
    assert line.startswith("Sample ratio mismatch, do not trust this yet: treatment changed")


def test_the_scorecard_is_written_beside_the_tables(held: ReachReport, tmp_path: Path) -> None:
    out = held.write(tmp_path / "out")
    assert (out / "scorecard.csv").exists() and (out / "scorecard.parquet").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["time_rule"] == "events at or after the pair's first exposure"
    assert summary["window"]["attribution_days"] == 0
