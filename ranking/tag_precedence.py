"""Tag precedence: which of an item's tags attribute its exposures and pin its comments.

An item may carry a moderator's hand tag and the matcher's tags. The hand tag is the better
judgement: when an item has a manual tag, its matcher tags do not count (not for CommentTop,
not for attributing exposures to another claim). And a claim counts once per item: tags to
sibling rumors of one claim cluster (``ranking/clusters.py``) collapse into one, the first in
``tag_order``. The nightly job resolves the tag table with ``resolve_item_tags`` before the
join and before the item index is written, so every surface sees the same resolved tags.

The matcher's score saturates: a post that quotes two library claims scores 1.0 against both.
Between matched tags of equal score the one whose claim is worded most like the item's text
(``closeness``, the claim-cluster Jaccard of the two, computed by the caller) comes first, so
a library rumor's own post is tagged first to its own rumor, and an auto-tagged item pins its
first tag (``pinned_rumors``).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

MANUAL, MATCHED = "manual", "matched"
SOURCE_RANK = {MANUAL: 0, MATCHED: 1}


class Tag(NamedTuple):
    """One (item, rumor) tag with its provenance: ``source`` manual or matched, ``score`` (the
    matcher's score; 1.0 for a hand tag) and ``closeness`` of the item's text to the claim in
    [0, 1] (0 when unknown)."""

    item_id: str
    rumor_id: str
    source: str
    score: float
    closeness: float = 0.0


def tag_order(tag: Tag) -> tuple[int, float, float, str]:
    """The better tag first: manual before matched, then the higher score, then the closer
    wording, then rumor id."""
    return (SOURCE_RANK.get(tag.source, 0), -tag.score, -tag.closeness, tag.rumor_id)


@dataclass
class PrecedenceSummary:
    """What resolving dropped, for the run summary."""

    tags_in: int = 0
    tags_out: int = 0
    matched_overridden: int = 0  # matcher tags of items that carry a manual tag
    siblings_collapsed: int = 0  # tags to a claim cluster the item already carries

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def resolve_item_tags(
    tags: Iterable[Tag], cluster_of: Mapping[str, str]
) -> tuple[list[Tag], PrecedenceSummary]:
    """The tags that count, sorted by item then ``tag_order``: an item with a manual tag keeps
    only its manual tags; then one tag per (item, claim cluster), the first in ``tag_order``
    (``cluster_of`` maps a rumor id to its cluster; a rumor it lacks is its own cluster)."""
    by_item: dict[str, list[Tag]] = {}
    summary = PrecedenceSummary()
    for t in tags:
        by_item.setdefault(t.item_id, []).append(t)
        summary.tags_in += 1
    out: list[Tag] = []
    for item in sorted(by_item):
        ordered = sorted(by_item[item], key=tag_order)
        if any(t.source != MATCHED for t in ordered):
            kept = [t for t in ordered if t.source != MATCHED]
            summary.matched_overridden += len(ordered) - len(kept)
            ordered = kept
        claims: set[str] = set()
        for t in ordered:
            claim = cluster_of.get(t.rumor_id, t.rumor_id)
            if claim in claims:
                summary.siblings_collapsed += 1
                continue
            claims.add(claim)
            out.append(t)
    summary.tags_out = len(out)
    return out, summary


def pinned_rumors(resolved: Iterable[Tag], confirmed: Container[str]) -> dict[str, list[str]]:
    """Item -> the confirmed rumors its comments may pin, from ``resolve_item_tags`` output (by
    item, in ``tag_order``): every hand-tagged rumor (the moderator chose them all), or only
    the first auto tag (the matcher's best claim for the text; its other tags still attribute
    exposures)."""
    out: dict[str, list[str]] = {}
    for t in resolved:
        if t.rumor_id not in confirmed:
            continue
        kept = out.setdefault(t.item_id, [])
        if (t.source != MATCHED or not kept) and t.rumor_id not in kept:
            kept.append(t.rumor_id)
    return out
