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
    builder = AudienceBuilder()
    builder.add(state)
    return builder.finish(surface_counts)


class AudienceBuilder:
    """build_audience over a state read chunk by chunk (any split of its rows): per chunk, the
    per-rumor sums and minima and the first ``EARLIEST_SHARERS`` sharers of each rumor, which
    combine exactly; so the whole state is never held."""

    def __init__(self) -> None:
        self.per: list[pa.Table] = []
        self.sharers: list[pa.Table] = []

    def add(self, state: pa.Table) -> None:
        """Fold in a chunk of STATE_SCHEMA rows."""
        if state.num_rows == 0:
            return
        per = state.group_by("rumor_id", use_threads=False).aggregate(
            [
                ("user_id", "count"),
                ("shared", "sum"),
                ("exposures", "sum"),
                ("first_ts", "min"),
                ("first_share_ts", "min"),
            ]
        )
        self.per.append(_renamed(per))
        self.sharers.append(_first_sharers(state))

    def finish(self, surface_counts: pa.Table) -> pa.Table:
        """The audience table of every chunk added, with these per (rumor, surface) counts."""
        if not self.per:
            return AUDIENCE_SCHEMA.empty_table()
        per = pa.concat_tables(self.per)
        if len(self.per) > 1:
            per = per.group_by("rumor_id", use_threads=False).aggregate(
                [
                    ("users", "sum"),
                    ("sharers", "sum"),
                    ("exposures", "sum"),
                    ("first_ts", "min"),
                    ("first_share_ts", "min"),
                ]
            )
            per = _renamed(per)
        by_rumor = {r: i for i, r in enumerate(per["rumor_id"].to_pylist())}
        surface_cols = {s: np.zeros(per.num_rows, dtype=np.int64) for s in SURFACES}
        for row in surface_counts.to_pylist():
            i = by_rumor.get(row["rumor_id"])
            if i is not None:
                surface_cols[row["surface"]][i] += row["exposures"]
        sharers = earliest_sharers(pa.concat_tables(self.sharers))
        table = pa.table(
            {
                "rumor_id": per["rumor_id"],
                "exposed_users": pc.cast(per["users"], pa.int64()),
                "sharers": pc.cast(pc.fill_null(per["sharers"], 0), pa.int64()),
                "exposures": per["exposures"],
                **{f"exposures_{s}": pa.array(v) for s, v in surface_cols.items()},
                "first_exposed_at": per["first_ts"],
                "first_shared_at": per["first_share_ts"],
                "earliest_sharers": pa.array(
                    [sharers.get(r, []) for r in per["rumor_id"].to_pylist()],
                    pa.list_(pa.string()),
                ),
            },
            schema=AUDIENCE_SCHEMA,
        )
        return table.sort_by("rumor_id")


_NAMES = {"user_id_count": "users", "shared_sum": "sharers", "users_sum": "users",
          "sharers_sum": "sharers", "exposures_sum": "exposures", "first_ts_min": "first_ts",
          "first_share_ts_min": "first_share_ts"}  # fmt: skip


def _renamed(per: pa.Table) -> pa.Table:
    """A per-rumor aggregate with its columns named as the builder keeps them."""
    return per.rename_columns([_NAMES.get(c, c) for c in per.column_names])


def _first_sharers(state: pa.Table, k: int = EARLIEST_SHARERS) -> pa.Table:
    """The rows (rumor_id, first_share_ts, user_id) of each rumor's first ``k`` sharers in
    ``state``: the first ``k`` of all chunks are among those of each chunk."""
    columns = ["rumor_id", "first_share_ts", "user_id"]
    shared = state.filter(pc.is_valid(state["first_share_ts"])).select(columns)
    if shared.num_rows == 0:
        return shared
    shared = shared.sort_by([(c, "ascending") for c in columns])
    rumors = shared["rumor_id"].to_numpy(zero_copy_only=False)
    starts = np.r_[0, np.flatnonzero(rumors[1:] != rumors[:-1]) + 1]
    rank = np.arange(len(rumors)) - np.repeat(starts, np.diff(np.r_[starts, len(rumors)]))
    return shared.filter(pa.array(rank < k))
