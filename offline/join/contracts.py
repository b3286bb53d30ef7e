"""The data every join engine exchanges: the aggregate schemas, the tag set, the run summary.

Engines differ in how they scan and merge; what they hand over is fixed here, so a partition
aggregated by one engine merges with another's and the state files stay readable across them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
        ("tag_score", pa.float32()),
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
        ("tag_score", pa.float32()),
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
    ("tag_score", "max"),
)
# A tag's score: the matcher's confidence that the item carries the rumor, 1.0 for a hand tag.
TAG_PAIR_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("rumor_id", pa.string()), ("tag_score", pa.float32())]
)
# What a pair aggregate without tag_score (written before it existed) is read as: a hand tag's.
MISSING_TAG_SCORE = 1.0

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
    """Distinct (item_id, rumor_id) string pairs with their best ``tag_score``
    (TAG_PAIR_SCHEMA), null ids dropped. The score is the ``score`` column clipped to [0, 1];
    1.0 for a manual tag (the input contract), a null score, or tags without the column."""
    ids = tags.select(["item_id", "rumor_id"]).cast(TAG_PAIR_SCHEMA.remove(2))
    score = pa.array(np.ones(tags.num_rows, dtype=np.float32))
    if "score" in tags.column_names:
        given = pc.fill_null(pc.cast(tags["score"], pa.float32()), 1.0)
        score = pc.min_element_wise(pc.max_element_wise(given, 0.0), 1.0)
        if "source" in tags.column_names:
            manual = pc.fill_null(pc.not_equal(tags["source"], "matched"), True)
            score = pc.if_else(manual, pa.scalar(1.0, pa.float32()), score)
    t = ids.append_column("tag_score", pc.cast(score, pa.float32())).drop_null()
    out = t.group_by(["item_id", "rumor_id"], use_threads=False).aggregate([("tag_score", "max")])
    return out.rename_columns(TAG_PAIR_SCHEMA.names).cast(TAG_PAIR_SCHEMA)


def with_tag_score(pairs: pa.Table) -> pa.Table:
    """Stored pair aggregates in PAIR_SCHEMA; those written before ``tag_score`` existed get
    MISSING_TAG_SCORE (a hand tag's score) for every pair."""
    if "tag_score" not in pairs.column_names:
        fill = pa.array(np.full(pairs.num_rows, MISSING_TAG_SCORE, dtype=np.float32))
        pairs = pairs.append_column("tag_score", fill)
    return pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)
