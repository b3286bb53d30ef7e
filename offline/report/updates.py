"""Re-pushed updates per arm: how often the exposed pairs were served a revised card again
(``update`` on the debunk events) and how many users saw one. Reach is not touched: a pair is
reached once whatever it was shown (offline/report/outcomes.py). Files written before the
``update`` column existed hold first deliveries only, so they add nothing here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.experiments import Experiment
from offline.io import logs as logfiles
from offline.io.contracts import EVENT_UPDATE

_COLUMNS = ["user_id", "rumor_id", "event", "ts", EVENT_UPDATE.name]
_KEYS = ["user_id", "rumor_id"]


def _updates(path: Path, wanted: pa.Table) -> pa.Table | None:
    """The file's update events of exposed pairs at or after their first exposure (None when
    the file has no ``update`` column)."""
    if EVENT_UPDATE.name not in pq.read_schema(path).names:
        return None
    t = pq.read_table(path, columns=_COLUMNS, filters=[(EVENT_UPDATE.name, "=", True)])
    t = pa.table({c: t[c] if c in ("ts", EVENT_UPDATE.name) else t[c].cast(pa.string())
                  for c in _COLUMNS})  # fmt: skip
    t = t.join(wanted, keys=_KEYS, join_type="inner", use_threads=False)
    return t.filter(pc.greater_equal(t["ts"], t["first_ts"]))


def updates_by_arm(
    events: Path, days: list[str], pairs: pa.Table, experiment: Experiment
) -> dict[str, dict[str, int]]:
    """Per arm (from the experiment's hash): ``updates_served`` and ``updates_impressions``
    (update events of exposed pairs at or after their first exposure) and ``updates_seen``
    (users with such an impression)."""
    out = {a.name: {"updates_served": 0, "updates_impressions": 0, "updates_seen": 0}
           for a in experiment.arms}  # fmt: skip
    files = [f for dt in days for f in logfiles.partition_files(events, dt)]
    if not files or not pairs.num_rows:
        return out
    wanted = pairs.select([*_KEYS, "first_ts"])
    parts = [t for f in files if (t := _updates(Path(f), wanted)) is not None]
    if not parts:
        return out
    t = pa.concat_tables(parts)
    names = np.array([a.name for a in experiment.arms])
    arms = names[experiment.arm_indexes(t["user_id"].to_pylist())] if t.num_rows else names[:0]
    events_col = np.array(t["event"].to_pylist(), dtype=object)
    users = np.array(t["user_id"].to_pylist(), dtype=object)
    for name in out:
        mine = arms == name
        seen = mine & (events_col == "impression")
        out[name]["updates_served"] = int((mine & (events_col == "served")).sum())
        out[name]["updates_impressions"] = int(seen.sum())
        out[name]["updates_seen"] = len(set(users[seen]))
    return out
