"""The item texts operators added live (``debunk items add``), kept in the state folder
(``STATE/live_items/items.parquet``) so the next nightly's match step reads them with the input
item texts and computes the same tags and review entries the command did."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.catalog import InputError
from offline.io.item_texts import LIVE_ITEM_SCHEMA
from offline.io.parquet import write_parquet_atomic

LIVE_ITEMS = Path("live_items") / "items.parquet"


def live_items_path(state_dir: Path) -> Path:
    """Where the live item texts of ``state_dir`` are kept."""
    return Path(state_dir) / LIVE_ITEMS


def load_live_items(state_dir: Path) -> pa.Table:
    """The kept live item texts (an empty table before the first ``items add``)."""
    path = live_items_path(state_dir)
    if not path.exists():
        return LIVE_ITEM_SCHEMA.empty_table()
    return pq.read_table(path).cast(LIVE_ITEM_SCHEMA)


def new_items(state_dir: Path, items: pa.Table) -> pa.Table:
    """The rows of ``items`` not kept yet; InputError when one reuses a kept item id with
    another text (an item's text does not change: nothing is applied)."""
    kept = load_live_items(state_dir)
    known = dict(zip(kept["item_id"].to_pylist(), kept["text"].to_pylist(), strict=True))
    fresh = []
    for item, text in zip(items["item_id"].to_pylist(), items["text"].to_pylist(), strict=True):
        if item in known and known[item] != text:
            raise InputError(f"item {item!r} was added before with another text")
        fresh.append(item not in known)
    return items.filter(pa.array(fresh, pa.bool_())) if not all(fresh) else items


def keep_items(state_dir: Path, fresh: pa.Table) -> Path | None:
    """Add ``fresh`` (rows not kept yet) to the kept file, written aside and renamed (None when
    there is nothing to add: the file is left as it is)."""
    if fresh.num_rows == 0:
        return None
    table = pa.concat_tables([load_live_items(state_dir), fresh.cast(LIVE_ITEM_SCHEMA)])
    return write_parquet_atomic(table, live_items_path(state_dir))
