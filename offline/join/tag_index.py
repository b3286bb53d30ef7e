"""The tagged items as lookup arrays for the local engine, and the exact join of screened
candidate rows to their rumors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.join.aggregate import aggregate_hits
from offline.join.contracts import Partial
from offline.join.idfilter import IdFilter


@dataclass(frozen=True)
class TagIndex:
    """Tagged items as lookup arrays: one set lookup finds both the rows on tagged items and
    their (first) rumor; the rare items tagged to several rumors are joined apart."""

    items: pa.Array
    first_rumor: pa.Array
    extra: pa.Table  # (item_id, rumor_id) beyond each item's first rumor
    prefilter: IdFilter  # drops most untagged rows before the exact lookup

    @classmethod
    def build(cls, tags: pa.Table) -> TagIndex:
        """From distinct (item_id, rumor_id) pairs (see prepare_tags)."""
        ordered = tags.sort_by([("item_id", "ascending"), ("rumor_id", "ascending")])
        items = ordered["item_id"].combine_chunks()
        n = len(items)
        first = np.ones(n, dtype=bool)
        if n > 1:
            first[1:] = pc.not_equal(items[1:], items[:-1]).to_numpy(zero_copy_only=False)
        mask = pa.array(first)
        rumors = ordered["rumor_id"].combine_chunks()
        items = items.filter(mask)
        return cls(
            items, rumors.filter(mask), ordered.filter(pc.invert(mask)), IdFilter.build(items)
        )

    def lookup(self, item_ids: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """Rows on tagged items (as row numbers) and their first rumor, by exact lookup."""
        position = pc.index_in(item_ids, value_set=self.items)
        found = pc.is_valid(position)
        rows = pa.array(np.flatnonzero(found.to_numpy(zero_copy_only=False)))
        return rows, pc.take(self.first_rumor, position.filter(found))


def join_candidates(candidates: pa.Table, index: TagIndex) -> tuple[int, Partial | None]:
    """Candidate rows (of many batches, so the lookup set is built once for all of them)
    joined exactly to their rumors and aggregated; returns (rows kept, aggregates)."""
    rows, rumors = index.lookup(candidates["item_id"])
    hits = candidates.take(rows)
    if not hits.num_rows:
        return 0, None
    joined = hits.append_column("rumor_id", rumors)
    if index.extra.num_rows:
        more = hits.join(index.extra, keys="item_id", join_type="inner", use_threads=False)
        joined = pa.concat_tables([joined, more.select(joined.column_names)])
    return hits.num_rows, aggregate_hits(joined)
