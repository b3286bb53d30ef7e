"""The data every join engine exchanges: the aggregate schemas, the tag set, the run summary.

Engines differ in how they scan and merge; what they hand over is fixed here, so a partition
aggregated by one engine merges with another's and the state files stay readable across them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from domain.vocab import ACTIONS, SURFACES

TS_TYPE = pa.timestamp("us", tz="UTC")
SHARE = ACTIONS.index("share")
STATE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("exposures", pa.int64()),
        ("first_ts", TS_TYPE),
        ("last_ts", TS_TYPE),
        ("strongest_action", pa.string()),
        ("surface_mask", pa.int16()),
        ("shared", pa.bool_()),
        ("first_share_ts", TS_TYPE),
        ("last_share_ts", TS_TYPE),
    ]
)
FLAGS = tuple(f"on_{s}" for s in SURFACES)
# Partial aggregates: the merge of two of them is again one (count adds, min/max/any combine).
PAIR_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("exposures", pa.int64()),
        ("first_ts", TS_TYPE),
        ("last_ts", TS_TYPE),
        ("action_code", pa.int8()),
        *[(f, pa.bool_()) for f in FLAGS],
        ("first_share_ts", TS_TYPE),
        ("last_share_ts", TS_TYPE),
    ]
)
SURFACE_COUNT_SCHEMA = pa.schema(
    [("rumor_id", pa.string()), ("surface", pa.string()), ("exposures", pa.int64())]
)
# How each PAIR_SCHEMA value column combines when two aggregates of one pair merge.
PAIR_MERGE = (
    ("exposures", "sum"),
    ("first_ts", "min"),
    ("last_ts", "max"),
    ("action_code", "max"),
    *[(f, "any") for f in FLAGS],
    ("first_share_ts", "min"),
    ("last_share_ts", "max"),
)
TAG_PAIR_SCHEMA = pa.schema([("item_id", pa.string()), ("rumor_id", pa.string())])

# Receives rejected raw log rows, the reason, and the file they came from.
RejectSink = Callable[[pa.Table, str, str], None]


@dataclass
class JoinSummary:
    """What a scan read, kept and rejected."""

    partitions: int = 0
    files: int = 0
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    seconds: float = 0.0

    def reject(self, reason: str, n: int) -> None:
        self.rows_rejected[reason] = self.rows_rejected.get(reason, 0) + n

    def add(self, other: JoinSummary) -> None:
        """Fold another summary's counts into this one."""
        self.partitions += other.partitions
        self.files += other.files
        self.rows_read += other.rows_read
        self.rows_kept += other.rows_kept
        for reason, n in other.rows_rejected.items():
            self.reject(reason, n)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rows_rejected": dict(sorted(self.rows_rejected.items()))}


@dataclass
class Partial:
    """Partial aggregates of log rows: per (user, rumor) pairs (PAIR_SCHEMA), per (rumor,
    surface) counts (SURFACE_COUNT_SCHEMA), each key once, in any order. What one scan of a
    partition leaves on disk."""

    pairs: pa.Table
    surfaces: pa.Table

    @classmethod
    def empty(cls) -> Partial:
        return cls(PAIR_SCHEMA.empty_table(), SURFACE_COUNT_SCHEMA.empty_table())


@dataclass
class ExposureState:
    """Merged aggregates: one row per (user, rumor) (STATE_SCHEMA, sorted by user then rumor)
    and the per (rumor, surface) exposure counts the audience is built from."""

    exposures: pa.Table
    surfaces: pa.Table


def prepare_tags(tags: pa.Table) -> pa.Table:
    """Distinct (item_id, rumor_id) string pairs (TAG_PAIR_SCHEMA), nulls dropped."""
    t = tags.select(["item_id", "rumor_id"]).cast(TAG_PAIR_SCHEMA)
    return t.drop_null().group_by(["item_id", "rumor_id"], use_threads=False).aggregate([])
