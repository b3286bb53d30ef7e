"""The night's tag table, resolved: manual tags before the matcher's, one tag per claim.

The hand tags of the tag file and the matcher's auto tags of this run meet here, with their
``source`` and ``score`` (TAG_SCHEMA); ``ranking.tag_precedence.resolve_item_tags`` decides
which count. The resolved table is what the join attributes exposures with and what the item
index (CommentTop, GroupWarnings) is written from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from offline.io.contracts import TAG_SCHEMA
from ranking.tag_precedence import Tag, resolve_item_tags


def resolve_tags(tags: pa.Table, clusters: Mapping[str, str]) -> tuple[pa.Table, dict[str, Any]]:
    """(the tags that count, sorted by item then precedence; the precedence summary) of
    ``tags`` (TAG_SCHEMA) under the rumors' claim ``clusters`` (rumor id -> cluster id)."""
    t = tags.select(TAG_SCHEMA.names).cast(TAG_SCHEMA)
    rows = (
        Tag(i, r, s or "manual", 1.0 if v is None else v)
        for i, r, s, v in zip(
            t["item_id"].to_pylist(),
            t["rumor_id"].to_pylist(),
            t["source"].to_pylist(),
            t["score"].to_pylist(),
            strict=True,
        )
    )
    kept, summary = resolve_item_tags(rows, clusters)
    columns = list(zip(*kept, strict=True)) if kept else [[] for _ in TAG_SCHEMA.names]
    table = pa.table(
        {name: pa.array(col, TAG_SCHEMA.field(name).type)
         for name, col in zip(TAG_SCHEMA.names, columns, strict=True)},
        schema=TAG_SCHEMA,
    )  # fmt: skip
    return table, summary.as_dict()
