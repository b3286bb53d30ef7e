"""The reach report's tables from the pair outcomes: per-user sums (the user is the unit), then
per arm, against control, per rumor, per day and time to debunk, with their intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from domain.experiments import Experiment
from offline.report import stats

SRM_ALPHA = 0.001  # a sample-ratio mismatch this unlikely under the configured shares is a bug
QUANTILES = (0.5, 0.9)
TIME_BINS_S = np.array([0, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600,
                        86_400, 2 * 86_400, 4 * 86_400, 7 * 86_400, np.inf])  # fmt: skip
# (name, numerator column, denominator column) of the per-user ratio metrics.
RATIOS = (
    ("pair_reach", "reached", "exposed"),
    ("ctr", "clicks", "impressions"),
    ("reshare_after_debunk", "reshared", "reached"),
)


@dataclass
class Users:
    """Per-user sums over the user's exposed pairs, and each user's arm (index into arms)."""

    ids: np.ndarray  # object array of user ids
    arm: np.ndarray
    sums: pd.DataFrame  # exposed, reached, impressions, clicks, reshared
    pair_user: np.ndarray  # for each pair, the index of its user


def per_user(pairs: pa.Table, experiment: Experiment) -> Users:
    """Sum each user's pairs; recompute every user's arm from the experiment's hash."""
    encoded = pc.dictionary_encode(pairs["user_id"]).combine_chunks()
    code = encoded.indices.to_numpy()
    ids = encoded.dictionary.to_numpy(zero_copy_only=False)
    n = len(ids)

    def total(col: str) -> np.ndarray:
        values = pairs[col].to_numpy(zero_copy_only=False).astype(np.float64)
        return np.bincount(code, weights=values, minlength=n)

    sums = pd.DataFrame(
        {
            "exposed": np.bincount(code, minlength=n).astype(np.float64),
            "reached": total("reached"),
            "impressions": total("impressions"),
            "clicks": total("clicks"),
            "reshared": total("reshared"),
        }
    )
    return Users(ids, experiment.arm_indexes(ids.tolist()), sums, code)


# --- the tables ----------------------------------------------------------------------------------


def _ci(prefix: str, e: stats.Estimate) -> dict[str, float]:
    return {prefix: e.value, f"{prefix}_lo": e.lo, f"{prefix}_hi": e.hi}


def arm_table(
    users: Users, ttd: np.ndarray, experiment: Experiment, alpha: float, n_boot: int, seed: int
) -> pd.DataFrame:
    """One row per arm: counts, user reach (Wilson), ratios (delta method), time to debunk."""
    rows = []
    for i, arm in enumerate(experiment.arms):
        mine = users.arm == i
        s = users.sums[mine]
        reached_users = int((s["reached"] > 0).sum())
        row: dict[str, Any] = {
            "arm": arm.name,
            "policy": arm.policy,
            "share": arm.share,
            "exposed_users": int(mine.sum()),
            "exposed_pairs": int(s["exposed"].sum()),
            "reached_users": reached_users,
            "reached_pairs": int(s["reached"].sum()),
            "impressions": int(s["impressions"].sum()),
            "clicks": int(s["clicks"].sum()),
            **_ci("user_reach", stats.proportion(reached_users, int(mine.sum()), alpha)),
        }
        for name, num, den in RATIOS:
            row.update(_ci(name, _ratio(s[num].to_numpy(), s[den].to_numpy(), alpha)))
        row.update(_time_quantiles(users, ttd, mine, alpha, n_boot, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def _ratio(num: np.ndarray, den: np.ndarray, alpha: float) -> stats.Estimate:
    """The delta-method ratio; where every user's share is 0 (or every one is 1) its SE is 0 and
    the interval would collapse, so the interval is Wilson's over the users instead (the users
    are the independent units: a holdout's pair reach is [0, Wilson upper], not [0, 0])."""
    e = stats.ratio(num, den, alpha)
    users = int((den > 0).sum())
    if e.se == 0 and users and e.value in (0.0, 1.0):
        lo, hi = stats.wilson_interval(np.array(int(e.value) * users), np.array(users), alpha)
        return stats.Estimate(e.value, e.se, float(lo), float(hi))
    return e


def _time_quantiles(
    users: Users, ttd: np.ndarray, mine: np.ndarray, alpha: float, n_boot: int, seed: int
) -> dict[str, float]:
    """p50/p90 hours from exposure to the first debunk impression, with clustered bootstrap CIs."""
    in_arm = mine[users.pair_user] & np.isfinite(ttd)
    out: dict[str, float] = {}
    if not in_arm.any() or n_boot == 0:  # no bootstrap: point quantiles only
        hours = ttd[in_arm] / 3600
        for q in QUANTILES:
            value = float(np.quantile(hours, q)) if len(hours) else np.nan
            out.update(_ci(f"hours_to_debunk_p{int(q * 100)}",
                           stats.Estimate(value, np.nan, np.nan, np.nan)))  # fmt: skip
        return out
    found = stats.clustered_bootstrap_quantiles(
        ttd[in_arm] / 3600, users.pair_user[in_arm], QUANTILES, n_boot=n_boot, seed=seed,
        alpha=alpha,
    )  # fmt: skip
    for q in QUANTILES:
        out.update(_ci(f"hours_to_debunk_p{int(q * 100)}", found[q]))
    return out


DENOMINATORS = {"user_reach": "exposed users", "pair_reach": "exposed pairs",
                "ctr": "impressions", "reshare_after_debunk": "reached pairs"}  # fmt: skip


def comparison_table(users: Users, experiment: Experiment, alpha: float) -> pd.DataFrame:
    """Each arm against the control arm, metric by metric: difference, CI, p-value, lift; a
    holdout's reach is 0 by design (-100% lift), a metric an arm has no denominator for is
    noted as not applying."""
    names = [a.name for a in experiment.arms]
    c = names.index(experiment.control.name)
    ctrl = users.sums[users.arm == c]
    rows = []
    for i, arm in enumerate(experiment.arms):
        if i == c:
            continue
        s = users.sums[users.arm == i]
        cmp = stats.compare_proportions(
            int((s["reached"] > 0).sum()), len(s), int((ctrl["reached"] > 0).sum()), len(ctrl),
            alpha,
        )  # fmt: skip
        held = arm.policy == "holdout"
        rows.append(_by_design(
            _comparison_row(arm.name, names[c], "user_reach", "wilson/z-test", cmp),
            held and s["reached"].sum() == 0 and ctrl["reached"].sum() > 0,
        ))  # fmt: skip
        for name, num, den in RATIOS:
            cmp = stats.compare_ratios(
                s[num].to_numpy(), s[den].to_numpy(), ctrl[num].to_numpy(), ctrl[den].to_numpy(),
                alpha,
            )  # fmt: skip
            row = _comparison_row(arm.name, names[c], name, "delta method by user", cmp)
            if float(s[den].sum()) == 0:
                row["note"] = f"does not apply: {arm.name} has no {DENOMINATORS[name]}"
            elif name == "pair_reach":
                row = _by_design(row, held and s[num].sum() == 0 and ctrl[num].sum() > 0)
            rows.append(row)
    return pd.DataFrame(rows, columns=_COMPARISON_COLUMNS)


HOLDOUT_NOTE = "holdout: never served, so reach is 0 by design"
_COMPARISON_COLUMNS = ["arm", "control", "metric", "method", "diff", "diff_lo", "diff_hi",
                       "p_value", "rel_lift", "rel_lift_lo", "rel_lift_hi", "note"]  # fmt: skip


def _by_design(row: dict[str, Any], zero_by_design: bool) -> dict[str, Any]:
    """A holdout's reach against control: the log-ratio lift is undefined at 0, but a holdout
    that reached nobody while control reached some is exactly -100%, a fact of the design."""
    if zero_by_design:
        row.update(rel_lift=-1.0, rel_lift_lo=-1.0, rel_lift_hi=-1.0, note=HOLDOUT_NOTE)
    return row


def _comparison_row(
    arm: str, control: str, metric: str, method: str, c: stats.Comparison
) -> dict[str, Any]:
    """One row of the comparison table (``note`` empty unless something does not apply)."""
    values = [arm, control, metric, method, c.diff, c.lo, c.hi, c.p_value, c.rel_lift, c.rel_lo,
              c.rel_hi, ""]  # fmt: skip
    return dict(zip(_COMPARISON_COLUMNS, values, strict=True))


def _wilson_columns(frame: pd.DataFrame, x: str, n: str, prefix: str, alpha: float) -> None:
    lo, hi = stats.wilson_interval(frame[x].to_numpy(), frame[n].to_numpy(), alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame[prefix] = frame[x] / frame[n]
    frame[f"{prefix}_lo"], frame[f"{prefix}_hi"] = lo, hi


def rumor_table(
    pairs: pa.Table,
    users: Users,
    ttd: np.ndarray,
    experiment: Experiment,
    alpha: float,
    claims: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Per rumor and arm: its claim, exposed and reached users (Wilson), clicks, median hours,
    re-shares."""
    frame = pd.DataFrame(
        {
            "rumor_id": pairs["rumor_id"].to_numpy(zero_copy_only=False),
            "arm": np.array([a.name for a in experiment.arms])[users.arm[users.pair_user]],
            "reached": pairs["reached"].to_numpy(zero_copy_only=False),
            "clicks": pairs["clicks"].to_numpy(zero_copy_only=False),
            "impressions": pairs["impressions"].to_numpy(zero_copy_only=False),
            "reshared": pairs["reshared"].to_numpy(zero_copy_only=False),
            "hours": ttd / 3600,
        }
    )
    out = (
        frame.groupby(["rumor_id", "arm"], sort=True)
        .agg(
            exposed_users=("reached", "size"),
            reached_users=("reached", "sum"),
            impressions=("impressions", "sum"),
            clicks=("clicks", "sum"),
            reshared=("reshared", "sum"),
            hours_to_debunk_p50=("hours", "median"),
        )
        .reset_index()
    )
    named = claims or {}
    out.insert(1, "claim", [named.get(r, "") for r in out["rumor_id"]])
    _wilson_columns(out, "reached_users", "exposed_users", "reach", alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ctr"] = out["clicks"] / out["impressions"]
        out["reshare_after_debunk"] = out["reshared"] / out["reached_users"]
    return out


def daily_table(
    pairs: pa.Table, users: Users, experiment: Experiment, days: list[str], alpha: float
) -> pd.DataFrame:
    """Per day of first exposure and arm: exposed and reached pairs, reach with Wilson bounds
    (pairs as units: a day's pairs are mostly distinct users); and user reach (Wilson) of the
    users whose first exposure in the window fell on that day (the headline metric by day)."""
    day = pc.strftime(pairs["first_ts"], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
    frame = pd.DataFrame(
        {
            "day": day,
            "arm": np.array([a.name for a in experiment.arms])[users.arm[users.pair_user]],
            "reached": pairs["reached"].to_numpy(zero_copy_only=False),
        }
    )
    out = frame.groupby(["day", "arm"]).agg(
        exposed_pairs=("reached", "size"), reached_pairs=("reached", "sum")
    )
    index = pd.MultiIndex.from_product([days, [a.name for a in experiment.arms]],
                                       names=["day", "arm"])  # fmt: skip
    out = out.reindex(index, fill_value=0).reset_index()
    _wilson_columns(out, "reached_pairs", "exposed_pairs", "reach", alpha)
    firsts = _user_first_day(pairs, users)
    by_user = pd.DataFrame(
        {
            "day": firsts,
            "arm": np.array([a.name for a in experiment.arms])[users.arm],
            "reached": (users.sums["reached"] > 0).to_numpy(),
        }
    )
    per_user = by_user.groupby(["day", "arm"]).agg(
        exposed_users=("reached", "size"), reached_users=("reached", "sum")
    )
    per_user = per_user.reindex(index, fill_value=0).reset_index()
    out["exposed_users"] = per_user["exposed_users"].to_numpy()
    out["reached_users"] = per_user["reached_users"].to_numpy().astype(int)
    _wilson_columns(out, "reached_users", "exposed_users", "user_reach", alpha)
    return out


def _user_first_day(pairs: pa.Table, users: Users) -> np.ndarray:
    """Each user's day (YYYY-MM-DD) of first exposure in the window, over all their pairs."""
    micros = pc.cast(pairs["first_ts"], pa.int64()).to_numpy(zero_copy_only=False)
    first = np.full(len(users.ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, users.pair_user, micros)
    return np.datetime_as_string(first.astype("datetime64[us]"), unit="D")


def time_table(users: Users, ttd: np.ndarray, experiment: Experiment) -> pd.DataFrame:
    """The distribution of time from exposure to debunk per arm, in fixed bins."""
    rows = []
    for i, arm in enumerate(experiment.arms):
        values = ttd[(users.arm[users.pair_user] == i) & np.isfinite(ttd)]
        counts, _ = np.histogram(values, bins=TIME_BINS_S)
        total = max(int(counts.sum()), 1)
        for lo, hi, n in zip(TIME_BINS_S[:-1], TIME_BINS_S[1:], counts, strict=True):
            rows.append({"arm": arm.name, "from_s": float(lo), "to_s": float(hi),
                         "pairs": int(n), "share": n / total})  # fmt: skip
    return pd.DataFrame(rows)


def srm_check(users: Users, experiment: Experiment) -> dict[str, Any]:
    """Exposed users per arm against the configured shares (chi-square)."""
    counts = np.bincount(users.arm, minlength=len(experiment.arms)).astype(int)
    shares = [a.share for a in experiment.arms]
    chi2, p = stats.srm_check(counts.tolist(), shares) if counts.sum() else (np.nan, np.nan)
    return {
        "counts": dict(zip([a.name for a in experiment.arms], counts.tolist(), strict=True)),
        "expected_shares": dict(zip([a.name for a in experiment.arms], shares, strict=True)),
        "chi2": chi2,
        "p_value": p,
        "alpha": SRM_ALPHA,
        "mismatch": bool(p < SRM_ALPHA),
    }


def label_mismatches(labels: pa.Table, experiment: Experiment) -> tuple[int, int]:
    """Users whose events carry an arm other than the one the hash gives them, and how many
    such events there are."""
    if not labels.num_rows:
        return 0, 0
    users = labels["user_id"].to_pylist()
    expected = np.array([a.name for a in experiment.arms])[experiment.arm_indexes(users)]
    wrong = expected != np.array(labels["arm"].to_pylist())
    events = labels["events"].to_numpy() if "events" in labels.column_names else np.ones(len(wrong))
    return len(set(np.array(users)[wrong])), int(events[wrong].sum())
