"""The night's tag table, resolved: manual tags before the matcher's, one tag per claim.

The hand tags of the tag file and the matcher's auto tags of this run meet here, with their
``source`` and ``score`` (TAG_SCHEMA); ``ranking.tag_precedence.resolve_item_tags`` decides
which count. Given the item texts and the claims, each auto tag is first checked against its
text (``offline.nightly.provenance.tag_objection``: a refuting text or a fragment is not
tagged; counted under ``matched_dropped``) and gets its ``closeness`` (the claim-cluster
Jaccard of text and claim), which orders auto tags of equal score. The resolved table is what
the join attributes exposures with and what the item index (CommentTop, GroupWarnings) is
written from (``pinned_item_rumors``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from offline.io.contracts import TAG_SCHEMA
from offline.join.contracts import prepare_tags
from offline.nightly.provenance import tag_objection
from ranking.clusters import claim_grams, jaccard
from ranking.tag_precedence import MATCHED, Tag, pinned_rumors, resolve_item_tags

BATCH_ROWS = 50_000


def item_texts(sources: Iterable[Path], wanted: set[str]) -> dict[str, str]:
    """item id -> text of the ``wanted`` items of the item-text files ``sources`` (Parquet,
    columns item_id and text; the first file's text wins), read in batches."""
    out: dict[str, str] = {}
    want = pa.array(sorted(wanted), pa.string())
    for path in sources:
        if not wanted or not Path(path).exists():
            continue
        for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=["item_id", "text"]):
            ids = batch.column(0).cast(pa.string())
            keep = pc.is_in(ids, value_set=want)
            texts = batch.column(1).filter(keep).to_pylist()
            for item, text in zip(ids.filter(keep).to_pylist(), texts, strict=True):
                out.setdefault(item, text or "")
    return out


def _rows(
    t: pa.Table, texts: Mapping[str, str], claims: Mapping[str, str], dropped: dict[str, int]
) -> Iterator[Tag]:
    """The tags of ``t`` as Tag, auto tags checked against their texts and given closeness."""
    for i, r, s, v in zip(
        t["item_id"].to_pylist(),
        t["rumor_id"].to_pylist(),
        t["source"].to_pylist(),
        t["score"].to_pylist(),
        strict=True,
    ):
        source = s or "manual"
        score = 1.0 if v is None else v
        if source != MATCHED or i not in texts:
            yield Tag(i, r, source, score)
            continue
        reason = tag_objection(texts[i], claims.get(r))
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        closeness = jaccard(claim_grams(texts[i]), claim_grams(claims.get(r, "")))
        yield Tag(i, r, source, score, round(closeness, 6))


def resolve_tags(
    tags: pa.Table,
    clusters: Mapping[str, str],
    texts: Mapping[str, str] | None = None,
    claims: Mapping[str, str] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """(the tags that count, sorted by item then precedence; the precedence summary) of
    ``tags`` (TAG_SCHEMA) under the rumors' claim ``clusters`` (rumor id -> cluster id); auto
    tags of items in ``texts`` are checked against the rumor's claim in ``claims``."""
    t = tags.select(TAG_SCHEMA.names).cast(TAG_SCHEMA)
    dropped: dict[str, int] = {}
    kept, summary = resolve_item_tags(_rows(t, texts or {}, claims or {}, dropped), clusters)
    columns = [[getattr(k, n) for k in kept] for n in TAG_SCHEMA.names]
    table = pa.table(
        {name: pa.array(col, TAG_SCHEMA.field(name).type)
         for name, col in zip(TAG_SCHEMA.names, columns, strict=True)},
        schema=TAG_SCHEMA,
    )  # fmt: skip
    return table, {**summary.as_dict(), "matched_dropped": dict(sorted(dropped.items()))}


def matched_items(tags: pa.Table) -> set[str]:
    """The items that carry an auto tag."""
    matched = tags.filter(pc.equal(tags["source"], MATCHED))
    return set(matched["item_id"].to_pylist())


def pinned_item_rumors(tags: pa.Table, confirmed: set[str]) -> dict[str, list[str]]:
    """Item -> the confirmed rumors its comments may pin (``pinned_rumors``) of resolved
    ``tags``: every hand tag, or the best auto tag."""
    rows = (
        Tag(i, r, s, v)
        for i, r, s, v in zip(
            tags["item_id"].to_pylist(),
            tags["rumor_id"].to_pylist(),
            tags["source"].to_pylist(),
            tags["score"].to_pylist(),
            strict=True,
        )
    )
    return {k: v for k, v in pinned_rumors(rows, confirmed).items() if v}


def pinned_item_scores(
    tags: pa.Table, pinned: Mapping[str, list[str]]
) -> dict[str, dict[str, float]]:
    """Item -> rumor -> tag score below 1.0 (the join's ``prepare_tags`` rule: a matcher's
    score, clipped) for the ``pinned`` pairs of resolved ``tags``: what live ingest weighs a
    live exposure with, as the join weighs the logged ones."""
    pairs = prepare_tags(tags)
    out: dict[str, dict[str, float]] = {}
    for item, rumor, score in zip(pairs["item_id"].to_pylist(), pairs["rumor_id"].to_pylist(),
                                  pairs["tag_score"].to_pylist(), strict=True):  # fmt: skip
        if score < 1.0 and rumor in pinned.get(item, ()):
            out.setdefault(item, {})[rumor] = score
    return out
