"""Experiments: their config and the deterministic arm assignment both sides share.

A user's arm is a pure function of (salt, user_id), so the service assigns on the request path
and the offline report recomputes the same arm for users who were never served. The rule, byte
by byte with a worked example, is docs/experiments.md (tests/test_assignment_rule.py holds this
code to it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from domain import ids

# What an arm's users get in their feed. "holdout": no targeted debunks (the feed still works);
# "rules": the policy ranker; "model": the learned ranker blended with the policy (rules when a
# snapshot has no model).
POLICIES = ("rules", "holdout", "model")
BUCKETS = 10_000
MAX_ARMS = 10


class ExperimentError(ValueError):
    """An experiment config that cannot be used."""


def bucket(salt: str, user_id: str) -> int:
    """The user's bucket in [0, BUCKETS): a keyed hash, stable across processes and machines."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def buckets(salt: str, user_ids: Iterable[str]) -> np.ndarray:
    """``bucket`` for many users (the offline side recomputes assignment with it)."""
    key = salt.encode()[:64]
    blake = hashlib.blake2b
    return np.fromiter(
        (int.from_bytes(blake(u.encode(), digest_size=8, key=key).digest(), "big") % BUCKETS
         for u in user_ids),
        dtype=np.int64,
    )  # fmt: skip


@dataclass(frozen=True)
class Arm:
    """One arm: its traffic share, the feed policy it runs, an optional own daily cap."""

    name: str
    share: float
    policy: str = "rules"
    feed_daily_cap: int | None = None


def check_salt(salt: str) -> str:
    """Return ``salt`` if it can key the hash (1..64 characters), else raise ExperimentError."""
    if not isinstance(salt, str) or not salt or len(salt) > 64:
        raise ExperimentError("salt must be 1..64 characters")
    return salt


def check_arms(arms: tuple[Arm, ...]) -> tuple[Arm, ...]:
    """Return ``arms`` if they make a split (1..10 named arms, shares adding up to 1), else
    raise ExperimentError naming what is wrong."""
    if not 1 <= len(arms) <= MAX_ARMS:
        raise ExperimentError(f"an experiment has 1..{MAX_ARMS} arms")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ExperimentError(f"arm names repeat: {names}")
    for a in arms:
        if not ids.valid_id(a.name):
            raise ExperimentError(f"arm name {a.name!r} may only hold letters, digits, _.-")
        if a.policy not in POLICIES:
            raise ExperimentError(f"arm {a.name}: policy must be one of {POLICIES}")
        if not 0 < a.share <= 1:
            raise ExperimentError(f"arm {a.name}: share must be in (0, 1]")
        if a.feed_daily_cap is not None and not 0 <= a.feed_daily_cap <= 1000:
            raise ExperimentError(f"arm {a.name}: feed_daily_cap must be in [0, 1000]")
    total = sum(a.share for a in arms)
    if abs(total - 1) > 1e-6:
        raise ExperimentError(f"arm shares must add up to 1, not {total:g}")
    return arms


def arm_bounds(arms: tuple[Arm, ...]) -> np.ndarray:
    """Each arm's exclusive upper bucket: the running sum of round(share × BUCKETS) in arm
    order, the last forced to BUCKETS so that rounding never leaves a bucket unassigned."""
    cumulative = np.cumsum([round(a.share * BUCKETS) for a in arms])
    cumulative[-1] = BUCKETS
    return cumulative


def arm_index(bounds: np.ndarray, user_buckets: np.ndarray | int) -> np.ndarray:
    """The arm position of each bucket: the first arm whose bound is above it."""
    return np.searchsorted(bounds, user_buckets, "right")


def parse_time(value: float | str | datetime) -> float:
    """Unix seconds from unix seconds, a datetime or an ISO-8601 string (UTC when naive)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return float(value)


def iso(ts: float) -> str:
    """Unix seconds as an ISO-8601 UTC string."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Experiment:
    """An experiment: users split into arms by hash of (salt, user_id) from start to end."""

    name: str
    salt: str
    arms: tuple[Arm, ...]
    start: float
    end: float
    description: str = ""
    _bounds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            ids.check_id(self.name, "experiment name")
        except ids.InvalidId as e:
            raise ExperimentError(str(e)) from None
        check_salt(self.salt)
        check_arms(self.arms)
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ExperimentError("start and end must be times")
        object.__setattr__(self, "start", float(round(self.start)))  # whole seconds: exact in JSON
        object.__setattr__(self, "end", float(round(self.end)))
        if not self.start < self.end:
            raise ExperimentError("start must be before end")
        object.__setattr__(self, "_bounds", arm_bounds(self.arms))

    @property
    def control(self) -> Arm:
        """The arm others are compared with: the one named ``control``, else the first."""
        return next((a for a in self.arms if a.name == "control"), self.arms[0])

    def running(self, now: float) -> bool:
        return self.start <= now < self.end

    def arm_of(self, user_id: str) -> Arm:
        """The arm of one user."""
        return self.arms[int(arm_index(self._bounds, bucket(self.salt, user_id)))]

    def arm_indexes(self, user_ids: Iterable[str]) -> np.ndarray:
        """The arm index of each user (positions in ``arms``)."""
        return arm_index(self._bounds, buckets(self.salt, user_ids))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "salt": self.salt,
            "arms": [asdict(a) for a in self.arms],
            "start": iso(self.start),
            "end": iso(self.end),
            "description": self.description,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Experiment:
        try:
            arms = tuple(
                Arm(str(a["name"]), float(a["share"]), str(a.get("policy", "rules")),
                    None if a.get("feed_daily_cap") is None else int(a["feed_daily_cap"]))
                for a in raw["arms"]
            )  # fmt: skip
            return cls(
                name=str(raw["name"]),
                salt=str(raw.get("salt") or raw["name"]),
                arms=arms,
                start=parse_time(raw["start"]),
                end=parse_time(raw["end"]),
                description=str(raw.get("description", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ExperimentError):
                raise
            raise ExperimentError(f"bad experiment config: {type(e).__name__}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Experiment:
        return cls.from_dict(json.loads(text))


def parse_arms(spec: str) -> tuple[Arm, ...]:
    """Arms from ``name:share[:policy[:cap]],...`` (e.g. ``control:0.5,holdout:0.1:holdout``)."""
    arms = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        fields = part.split(":")
        if not 2 <= len(fields) <= 4:
            raise ExperimentError(f"arm {part!r}: expected name:share[:policy[:cap]]")
        try:
            share = float(fields[1])
            cap = int(fields[3]) if len(fields) == 4 else None
        except ValueError:
            raise ExperimentError(f"arm {part!r}: share and cap must be numbers") from None
        arms.append(Arm(fields[0], share, fields[2] if len(fields) > 2 else "rules", cap))
    return tuple(arms)


def running(experiments: Iterable[Experiment], now: float) -> Experiment | None:
    """The experiment running at ``now`` (at most one runs at a time)."""
    return next((e for e in experiments if e.running(now)), None)


def overlapping(new: Experiment, others: Iterable[Experiment]) -> Experiment | None:
    """Another experiment whose time window overlaps ``new``'s (one runs at a time)."""
    return next(
        (o for o in others if o.name != new.name and o.start < new.end and new.start < o.end),
        None,
    )
