"""Guards before the flip: a nightly run that read nothing, or would empty or shrink what users
are served, fails before anything reaches Redis, saying what was wrong and how to override.

A run over a missing log folder, an empty one, or a window without partitions, or with a catalog
in which no confirmed rumor has a debunk, would otherwise flip a snapshot that serves nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from domain.records import Catalog, Debunk, Rumor
from feature_store import keys
from feature_store.snapshots import current_version
from offline.join.engine import DEFAULT_ENGINE, JoinEngine, engine_named, is_remote

DEFAULT_MAX_SHRINK = 0.5
OVERRIDE = "pass --allow-shrink to flip it anyway"


class NightlyRefused(RuntimeError):
    """The run would flip a snapshot that serves nobody, or far fewer than the current one."""


@dataclass(frozen=True)
class FlipGuard:
    """How much a new snapshot may shrink against the current one before the run refuses."""

    max_shrink: float = DEFAULT_MAX_SHRINK  # the share of users or pairs that may disappear
    allow_shrink: bool = False  # the operator's override of every guard here

    def __post_init__(self) -> None:
        if not 0 <= self.max_shrink <= 1:
            raise ValueError("--max-shrink must be a share in [0, 1]")

    def refuse(self, message: str) -> None:
        if not self.allow_shrink:
            raise NightlyRefused(f"{message}; nothing was flipped ({OVERRIDE})")


def check_logs(
    guard: FlipGuard,
    logs: Path | str,
    run_date: date,
    lookback_days: int,
    engine: JoinEngine | None = None,
) -> None:
    """The log folder exists and has files in at least one partition of the window; listed by
    ``engine`` (a Hadoop URI through Spark), by default as a local folder."""
    runner = engine or engine_named(DEFAULT_ENGINE)
    try:
        missing = not is_remote(logs) and not Path(logs).is_dir()
        found = [] if missing else runner.log_partitions(logs)
    except FileNotFoundError:
        missing = True
    if missing:
        guard.refuse(f"{logs}: the exposure log folder does not exist")
        return
    first = (run_date - timedelta(days=lookback_days - 1)).isoformat()
    in_window = [dt for dt in found if first <= dt <= run_date.isoformat()]
    if not in_window:
        guard.refuse(f"{logs}: no dt= partition from {first} to {run_date.isoformat()}")
    elif not runner.log_files(logs, in_window)[1]:
        guard.refuse(f"{logs}: the partitions from {first} to {run_date} hold no Parquet file")


def check_catalog(guard: FlipGuard, rumors: list[Rumor], debunks: list[Debunk]) -> None:
    """At least one confirmed rumor has a debunk to serve."""
    catalog = Catalog.build(rumors, debunks)
    servable = [r for r in rumors if r.confirmed and catalog.debunks_by_rumor.get(r.rumor_id)]
    if not servable:
        known = sum(1 for d in debunks if any(r in catalog.rumors for r in d.rumor_ids))
        guard.refuse(
            f"the catalog has no servable debunk ({len(rumors)} rumors, "
            f"{sum(r.confirmed for r in rumors)} confirmed, {len(debunks)} debunks, "
            f"{known} naming a known rumor)"
        )


def state_counts(state: Path) -> dict[str, int]:
    """Users and pairs of a state file, read one row group at a time: the rows are in user
    order, so a user met again at the start of a group was counted by the group before."""
    users = pairs = 0
    last: str | None = None
    source = pq.ParquetFile(state)
    for group in range(source.num_row_groups):
        ids = source.read_row_group(group, columns=["user_id"])["user_id"]
        if not len(ids):
            continue
        users += pc.count_distinct(ids).as_py() - (ids[0].as_py() == last)
        last, pairs = ids[-1].as_py(), pairs + len(ids)
    return {"users": users, "pairs": pairs}


def check_shrink(guard: FlipGuard, client: redis.Redis, state: Path) -> dict[str, Any]:
    """The new state's users and pairs against the snapshot being served now."""
    new = state_counts(state)
    version = current_version(client)
    if version is None:
        return {"current": None, "new": new}
    meta = client.hgetall(keys.meta(version))
    old = {k: int(meta.get(k.encode(), b"0")) for k in ("users", "pairs")}
    result: dict[str, Any] = {"current": version, "old": old, "new": new}
    for what in ("users", "pairs"):
        if old[what] and new[what] < old[what] * (1 - guard.max_shrink):
            guard.refuse(
                f"the new snapshot would serve {new[what]:,} {what} against {old[what]:,} in the "
                f"current one ({version}), a drop of {1 - new[what] / old[what]:.0%} (more than "
                f"--max-shrink {guard.max_shrink:g})"
            )
            result["forced"] = True
    return result


def known_tags(tags: pa.Table, rumors: list[Rumor]) -> tuple[pa.Table, pa.Table]:
    """(tags naming a rumor of the library, tags naming none): the latter go to rejects."""
    ids = pa.array(sorted(r.rumor_id for r in rumors), pa.string())
    known = pc.is_in(tags["rumor_id"], value_set=ids)
    return tags.filter(known), tags.filter(pc.invert(known))
