"""The tagged items as lookup arrays for the local engine, the exact join of screened candidate
rows to their rumors, and the tagged-item test of a dictionary's entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.join.contracts import Partial
from offline.join.idfilter import IdFilter
from offline.join.pair_agg import RumorCodes, aggregate_rows


@dataclass(frozen=True)
class TagIndex:
    """Tagged items as lookup arrays: one set lookup finds both the rows on tagged items and
    their (first) rumor; the rare items tagged to several rumors are joined apart. ``codes``
    holds the rumors as int codes, so the joined rows are aggregated on integers
    (offline.join.pair_agg)."""

    items: pa.Array
    first_rumor: pa.Array
    first_score: pa.Array  # the tag score of each item's first rumor
    extra: pa.Table  # (item_id, rumor_id, tag_score) beyond each item's first rumor
    prefilter: IdFilter  # drops most untagged rows before the exact lookup
    codes: RumorCodes  # the items' rumors as int codes, for the aggregation
    # item_id -> position in ``items``, for the exact test of a few dictionary entries at a time
    # (pc.index_in would build its hash set of every tagged item again on each call).
    positions: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, tags: pa.Table) -> TagIndex:
        """From distinct (item_id, rumor_id, tag_score) tags (see prepare_tags)."""
        ordered = tags.sort_by([("item_id", "ascending"), ("rumor_id", "ascending")])
        items = ordered["item_id"].combine_chunks()
        n = len(items)
        first = np.ones(n, dtype=bool)
        if n > 1:
            first[1:] = pc.not_equal(items[1:], items[:-1]).to_numpy(zero_copy_only=False)
        mask = pa.array(first)
        rumors = ordered["rumor_id"].combine_chunks().filter(mask)
        scores = ordered["tag_score"].combine_chunks().filter(mask)
        items = items.filter(mask)
        extra = ordered.filter(pc.invert(mask))
        positions = {item: i for i, item in enumerate(items.to_pylist())}
        # ``extra`` is sorted by item, so each item's further rumors are one run.
        extra_pos = np.array([positions[i] for i in extra["item_id"].to_pylist()], np.int64)
        codes = RumorCodes.build(rumors, scores, extra_pos, extra)
        return cls(items, rumors, scores, extra, IdFilter.build(items), codes, positions)

    def entry_positions(self, dictionary: pa.Array) -> np.ndarray:
        """Per entry of a dictionary of item ids: its position in ``items``, -1 when the item is
        not tagged. The prefilter rules out most entries; the rest are looked up exactly."""
        out = np.full(len(dictionary), -1, dtype=np.int32)
        maybe = self.prefilter.candidate_rows(dictionary)
        if len(maybe):
            found = map(self.positions.get, dictionary.take(maybe).to_pylist())
            out[maybe] = [-1 if p is None else p for p in found]
        return out

    def lookup(self, item_ids: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """Rows on tagged items (as row numbers) and their items' positions, by exact lookup."""
        position = pc.index_in(item_ids, value_set=self.items)
        found = pc.is_valid(position)
        rows = np.flatnonzero(found.to_numpy(zero_copy_only=False))
        at = position.filter(found).to_numpy().astype(np.int64)
        return rows, at


def join_candidates(
    candidates: pa.Table, index: TagIndex, pivots: np.ndarray | None = None
) -> tuple[int, Partial | None]:
    """Candidate rows (of many batches, so the lookup set is built once for all of them)
    joined exactly to their rumors and aggregated; returns (rows kept, aggregates). With
    ``pivots`` the aggregates come in user-bucket order (aggregate_rows)."""
    rows, at = index.lookup(candidates["item_id"])
    if not len(rows):
        return 0, None
    hits = candidates.take(pa.array(rows)) if len(rows) < candidates.num_rows else candidates
    return len(rows), aggregate_rows(hits, at, index.codes, pivots=pivots)


def join_known(
    hits: pa.Table, index: TagIndex, pivots: np.ndarray | None = None
) -> tuple[int, Partial | None]:
    """Rows already known to be on tagged items (``tag_pos``: the item's position in the
    index, from its dictionary entry) joined to their rumors and aggregated."""
    if not hits.num_rows:
        return 0, None
    at = hits["tag_pos"].combine_chunks().to_numpy()
    return hits.num_rows, aggregate_rows(hits, at, index.codes, pivots=pivots)
