"""The reach report's scorecard: per arm and metric, the value with its interval, the difference
and relative lift against control with their intervals, significance in words and the planted
effect when the world carries one; and the one-sentence headline. Pure: DataFrames in and out,
the numbers exactly those of the arms and comparisons tables."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from domain.experiments import Experiment
from offline.report import formatting as fmt

# (metric, what a reader calls it, unit, tested against control)
METRICS = (
    ("user_reach", "user reach", "share", True),
    ("pair_reach", "pair reach", "share", True),
    ("ctr", "click-through", "share", True),
    ("reshare_after_debunk", "re-share after debunk", "share", True),
    ("hours_to_debunk_p50", "median time to debunk", "hours", False),
    ("hours_to_debunk_p90", "90th pct. time to debunk", "hours", False),
)
COLUMNS = ["arm", "policy", "metric", "measure", "unit", "value", "lo", "hi", "diff", "diff_lo",
           "diff_hi", "rel_lift", "rel_lift_lo", "rel_lift_hi", "p_value", "significance",
           "planted_rel_lift", "note"]  # fmt: skip
_DENOMINATOR = {"ctr": "impressions", "reshare_after_debunk": "reached pairs",
                "hours_to_debunk_p50": "reached pairs", "hours_to_debunk_p90": "reached pairs",
                "user_reach": "exposed users", "pair_reach": "exposed pairs"}  # fmt: skip


def scorecard(
    arms: pd.DataFrame,
    comparisons: pd.DataFrame,
    experiment: Experiment,
    alpha: float = 0.05,
    planted: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per arm and metric, control's arm first (see module doc)."""
    by_arm = arms.set_index("arm")
    cmp = comparisons.set_index(["arm", "metric"]) if len(comparisons) else None
    control = experiment.control.name
    order = [control] + [a.name for a in experiment.arms if a.name != control]
    rows = []
    for name in order:
        if name not in by_arm.index:
            continue
        arm = by_arm.loc[name]
        for metric, measure, unit, tested in METRICS:
            row = dict.fromkeys(COLUMNS, math.nan)
            row.update(arm=name, policy=arm["policy"], metric=metric, measure=measure,
                       unit=unit, value=arm[metric], lo=arm[f"{metric}_lo"],
                       hi=arm[f"{metric}_hi"], significance="", note="")  # fmt: skip
            if name == control:
                row["significance"] = "the baseline"
            elif tested and cmp is not None and (name, metric) in cmp.index:
                c = cmp.loc[(name, metric)]
                row.update(
                    {
                        k: c[k]
                        for k in (
                            "diff",
                            "diff_lo",
                            "diff_hi",
                            "rel_lift",
                            "rel_lift_lo",
                            "rel_lift_hi",
                            "p_value",
                        )
                    }
                )
                row["note"] = c["note"]
                row["significance"] = _significance(row, alpha)
            else:
                row["significance"] = "no test (bootstrap interval only)"
            if _missing(row["value"]) and not row["note"]:
                row["note"] = f"does not apply: {name} has no {_DENOMINATOR[metric]}"
                row["significance"] = "does not apply"
            row["planted_rel_lift"] = _planted(planted, name, metric, control)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _missing(v: Any) -> bool:
    """Whether a value is NaN or None."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _significance(row: dict[str, Any], alpha: float) -> str:
    """The comparison in words: which way, whether it is significant, and its p-value."""
    if row["note"]:
        return "does not apply" if row["note"].startswith("does not apply") else "lower by design"
    p = row["p_value"]
    if _missing(p):
        return "no test (no variation)"
    if p < alpha:
        way = "higher" if row["diff"] > 0 else "lower"
        return f"{way} than control, significant ({fmt.p_value(p)})"
    return f"no significant difference ({fmt.p_value(p)})"


def _planted(planted: dict[str, Any] | None, arm: str, metric: str, control: str) -> float:
    """The relative pair reach a synthetic world planted for ``arm`` (NaN elsewhere): the
    planted serving chance changes pair reach in proportion."""
    if not planted or metric != "pair_reach" or arm == control:
        return math.nan
    expected = (planted.get("expected_relative_reach") or {}).get(arm)
    return float(expected) - 1.0 if expected is not None else math.nan


def headline(card: pd.DataFrame, srm: dict[str, Any] | None = None, alpha: float = 0.05) -> str:
    """The one-sentence answer: how the first served arm changed user reach against control."""
    reach = card[card["metric"] == "user_reach"]
    if reach.empty:
        return "No exposed users in the window: there is nothing to compare."
    control = reach.iloc[0]
    others = reach.iloc[1:]
    served = others[others["policy"] != "holdout"]
    pick = served.iloc[0] if len(served) else (others.iloc[0] if len(others) else None)
    warn = ""
    if srm and srm.get("mismatch"):
        warn = "Sample ratio mismatch, do not trust this yet: "
    if pick is None:
        return f"{warn}User reach was {fmt.pct(control['value'])} (one arm, nothing to compare)."
    arm = str(pick["arm"]).capitalize() if not warn else str(pick["arm"])
    if _missing(pick["p_value"]) or _missing(pick["diff"]):
        return (f"{warn}{arm} had user reach {fmt.pct(pick['value'])} against "
                f"{fmt.pct(control['value'])} for {control['arm']}.")  # fmt: skip
    significant = bool(pick["note"]) or pick["p_value"] < alpha
    verb = ("raised" if pick["diff"] > 0 else "lowered") if significant else "changed"
    numbers = ", ".join([fmt.points(pick["diff"]), fmt.lift(pick["rel_lift"]),
                         fmt.p_value(pick["p_value"])])  # fmt: skip
    tail = "" if significant else ", not a significant difference"
    return (f"{warn}{arm} {verb} user reach from {fmt.pct(control['value'])} to "
            f"{fmt.pct(pick['value'])} ({numbers}){tail}.")  # fmt: skip
