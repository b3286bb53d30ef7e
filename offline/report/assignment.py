"""Experiment assignment for analysts: the arm the service gives a user, from a salt and arms.

The rule (docs/experiments.md) is the one the service runs, so these functions call the same
``domain.experiments`` code rather than a copy; ``tests/test_assignment_rule.py`` checks that
code against the page's own words and the service's answers over gRPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from domain import experiments, ids
from domain.experiments import Arm, ExperimentError

ArmsLike = str | Mapping[str, float] | Iterable[Arm | tuple[str, float]]


def arms_of(arms: ArmsLike) -> tuple[Arm, ...]:
    """Arms from a spec (``"control:0.5,treatment:0.5"``), a name → share mapping in arm order,
    or a sequence of ``Arm``s or (name, share) pairs; checked as an experiment's are."""
    if isinstance(arms, str):
        parsed = experiments.parse_arms(arms)
    elif isinstance(arms, Mapping):
        parsed = tuple(Arm(str(name), float(share)) for name, share in arms.items())
    else:
        parsed = tuple(a if isinstance(a, Arm) else Arm(str(a[0]), float(a[1])) for a in arms)
    return experiments.check_arms(parsed)


def assign(user_id: str, salt: str, arms: ArmsLike) -> str:
    """The name of ``user_id``'s arm under ``salt`` and ``arms`` (what RankFeed reports)."""
    ids.check_id(user_id, "user_id")
    split = arms_of(arms)
    bucket = experiments.bucket(experiments.check_salt(salt), user_id)
    return split[int(experiments.arm_index(experiments.arm_bounds(split), bucket))].name


def assign_series(user_ids: pd.Series, salt: str, arms: ArmsLike) -> pd.Series:
    """``assign`` over a Series of user ids: a categorical Series of arm names (categories in
    arm order) on the same index, named ``arm``; any id the service would refuse is an error."""
    split = arms_of(arms)
    experiments.check_salt(salt)
    values = pd.Series(user_ids, copy=False)
    _check_ids(values)
    bounds = experiments.arm_bounds(split)
    codes = experiments.arm_index(bounds, experiments.buckets(salt, values.tolist()))
    names = [a.name for a in split]
    cat = pd.Categorical.from_codes(codes.astype(np.int64), categories=names)
    return pd.Series(cat, index=values.index, name="arm")


def _check_ids(values: pd.Series) -> None:
    """Raise ``InvalidId`` naming the first id the service's ``check_id`` would refuse."""
    ok = values.map(ids.valid_id).to_numpy(dtype=bool)
    if not ok.all():
        bad = values[~ok]
        raise ids.InvalidId(
            f"{len(bad)} user id(s) may not be assigned (the service refuses them), "
            f"first {bad.iloc[0]!r} at index {bad.index[0]!r}"
        )


__all__ = ["ArmsLike", "ExperimentError", "arms_of", "assign", "assign_series"]
