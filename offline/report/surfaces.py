"""Reach per surface: on which surfaces (feed, search, comment, group, push) the exposed pairs
met their debunk. A pair counts as reached on a surface when it had a debunk impression there at
or after its first exposure, as the pair outcomes define reach (offline/report/outcomes.py); a
pair reached on two surfaces counts on both. Push notifications count here as the push system
reports them through RecordEvents: displayed = impression, opened = click."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from domain.vocab import SURFACES
from offline.io import logs as logfiles

_COLUMNS = ["user_id", "rumor_id", "surface", "event", "ts"]
_KEYS = ["user_id", "rumor_id"]


def _plain(batch: pa.RecordBatch) -> pa.Table:
    """The batch with plain string columns (dictionary-encoded ones decoded)."""
    cols = {}
    for c in _COLUMNS:
        col = batch.column(c)
        if c != "ts":
            col = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
            col = col.cast(pa.string())
        cols[c] = col
    return pa.table(cols)


def reach_by_surface(events: Path, days: list[str], pairs: pa.Table) -> dict[str, dict[str, int]]:
    """Per surface: the exposed pairs' served, impression and click events at or after their
    first exposure, and the pairs and users reached there (see module doc)."""
    out = {s: {"served": 0, "impressions": 0, "clicks": 0, "reached_pairs": 0, "reached_users": 0}
           for s in SURFACES}  # fmt: skip
    files = [str(f) for dt in days for f in logfiles.partition_files(events, dt)]
    if not files or not pairs.num_rows:
        return out
    wanted = pairs.select(["user_id", "rumor_id", "first_ts"])
    reached: list[pa.Table] = []
    names = {"served": "served", "impression": "impressions", "click": "clicks"}
    scanner = ds.dataset(files, format="parquet").scanner(columns=_COLUMNS, batch_size=1 << 20)
    for batch in scanner.to_batches():
        t = _plain(batch).join(wanted, keys=_KEYS, join_type="inner", use_threads=False)
        t = t.filter(pc.greater_equal(t["ts"], t["first_ts"]))
        counts = t.group_by(["surface", "event"], use_threads=False).aggregate([("ts", "count")])
        for row in counts.to_pylist():
            if row["surface"] in out and row["event"] in names:
                out[row["surface"]][names[row["event"]]] += row["ts_count"]
        seen = t.filter(pc.equal(t["event"], "impression")).select(["surface", *_KEYS])
        reached.append(seen.group_by(["surface", *_KEYS], use_threads=False).aggregate([]))
    if not reached:
        return out
    triples = pa.concat_tables(reached).group_by(["surface", *_KEYS], use_threads=False)
    triples = triples.aggregate([])
    for surface in out:
        mine = triples.filter(pc.equal(triples["surface"], surface))
        out[surface]["reached_pairs"] = mine.num_rows
        out[surface]["reached_users"] = len(pc.unique(mine["user_id"]))
    return out
