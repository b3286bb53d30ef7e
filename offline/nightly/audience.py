"""Per-rumor audience: who saw it, who shared it, on which surfaces, who started the spread."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from domain.vocab import SURFACES

EARLIEST_SHARERS = 10
AUDIENCE_SCHEMA = pa.schema(
    [
        ("rumor_id", pa.string()),
        ("exposed_users", pa.int64()),
        ("sharers", pa.int64()),
        ("exposures", pa.int64()),
        *[(f"exposures_{s}", pa.int64()) for s in SURFACES],
        ("first_exposed_at", pa.timestamp("us", tz="UTC")),
        ("first_shared_at", pa.timestamp("us", tz="UTC")),
        ("earliest_sharers", pa.list_(pa.string())),
    ]
)


def earliest_sharers(state: pa.Table, k: int = EARLIEST_SHARERS) -> dict[str, list[str]]:
    """Per rumor, the first ``k`` users to share it, in order of their first share."""
    shared = state.filter(pc.is_valid(state["first_share_ts"])).select(
        ["rumor_id", "first_share_ts", "user_id"]
    )
    if shared.num_rows == 0:
        return {}
    shared = shared.sort_by(
        [("rumor_id", "ascending"), ("first_share_ts", "ascending"), ("user_id", "ascending")]
    )
    rumors = shared["rumor_id"].to_numpy(zero_copy_only=False)
    starts = np.r_[0, np.flatnonzero(rumors[1:] != rumors[:-1]) + 1]
    out: dict[str, list[str]] = {}
    users = shared["user_id"]
    ends = np.r_[starts[1:], len(rumors)]
    for s, e in zip(starts, ends, strict=True):
        out[str(rumors[s])] = users.slice(s, min(e - s, k)).to_pylist()
    return out


def build_audience(state: pa.Table, surface_counts: pa.Table) -> pa.Table:
    """One row per rumor with an exposed audience (see AUDIENCE_SCHEMA)."""
    if state.num_rows == 0:
        return AUDIENCE_SCHEMA.empty_table()
    per = state.group_by("rumor_id", use_threads=False).aggregate(
        [
            ("user_id", "count"),
            ("shared", "sum"),
            ("exposures", "sum"),
            ("first_ts", "min"),
            ("first_share_ts", "min"),
        ]
    )
    by_rumor = {r: i for i, r in enumerate(per["rumor_id"].to_pylist())}
    surface_cols = {s: np.zeros(per.num_rows, dtype=np.int64) for s in SURFACES}
    for row in surface_counts.to_pylist():
        i = by_rumor.get(row["rumor_id"])
        if i is not None:
            surface_cols[row["surface"]][i] += row["exposures"]
    sharers = earliest_sharers(state)
    table = pa.table(
        {
            "rumor_id": per["rumor_id"],
            "exposed_users": pc.cast(per["user_id_count"], pa.int64()),
            "sharers": pc.cast(pc.fill_null(per["shared_sum"], 0), pa.int64()),
            "exposures": per["exposures_sum"],
            **{f"exposures_{s}": pa.array(v) for s, v in surface_cols.items()},
            "first_exposed_at": per["first_ts_min"],
            "first_shared_at": per["first_share_ts_min"],
            "earliest_sharers": pa.array(
                [sharers.get(r, []) for r in per["rumor_id"].to_pylist()], pa.list_(pa.string())
            ),
        },
        schema=AUDIENCE_SCHEMA,
    )
    return table.sort_by("rumor_id")
