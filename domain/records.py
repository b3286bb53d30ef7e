"""Plain records shared by both sides: rumors, debunks, the catalog and exposure state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from domain.models import FeedModel
from domain.vocab import ACTION_STRENGTH, AUTHORITY_RANK


class ExposureState(NamedTuple):
    """What one user did with one rumor: how often, when, how strongly, on which surfaces.

    A named tuple rather than a frozen dataclass: the service decodes several per request, and
    a tuple is built three times faster."""

    rumor_id: str
    exposures: int
    first_ts: int  # unix seconds
    last_ts: int  # unix seconds
    strongest_action: int  # index into vocab.ACTIONS
    surface_mask: int  # bits from vocab.SURFACE_BIT
    # The ranker's logit of each debunk option of the rumor (catalog order; NaN: unknown to the
    # model), computed when the snapshot was written; empty when not precomputed.
    logits: tuple[float, ...] = ()
    # The best tag score among the items the user met the rumor through: the matcher's
    # confidence that an item carries it, 1.0 for a hand-tagged item (feed score weight).
    tag_score: float = 1.0

    @property
    def shared(self) -> bool:
        return self.strongest_action >= ACTION_STRENGTH["share"]


def named_states(states: list[ExposureState]) -> list[ExposureState]:
    """``states`` as ExposureStates: plain tuples in its field order (a kept snapshot row, read
    without a tracked object per state) made named ones, named ones as they are."""
    return [s if type(s) is ExposureState else tuple.__new__(ExposureState, s) for s in states]


@dataclass(frozen=True, slots=True)
class Rumor:
    """A rumor of the library, as the service needs it."""

    rumor_id: str
    claim: str
    category: str
    severity: int
    verdict: str
    status: str
    keywords: tuple[str, ...] = ()
    confirmed_at: str = ""
    variants: tuple[str, ...] = ()
    # The claim cluster (ranking/clusters.py): the smallest rumor id of the library's rumors
    # that state the same claim, set by the nightly job; "" means the rumor is its own cluster.
    cluster: str = ""
    aliases: tuple[str, ...] = ()  # search expansions operators configure (another name, ...)
    # When (unix seconds) an operator last changed its verdict or its debunks (0: never): users
    # served its card before then get the corrected card once more (ranking.filters).
    revised_at: int = 0

    @property
    def confirmed(self) -> bool:
        return self.status == "confirmed"

    @property
    def claim_cluster(self) -> str:
        """The id of the claim this rumor states: its cluster, else its own id."""
        return self.cluster or self.rumor_id

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["keywords"] = list(self.keywords)
        d["variants"] = list(self.variants)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rumor:
        """The inverse of ``to_dict`` (the store's own encoding); input rows go through
        ``domain.rows.parse_rumor``, which validates them."""
        return cls(
            rumor_id=str(d["rumor_id"]),
            claim=str(d.get("claim", "")),
            category=str(d.get("category", "other")),
            severity=int(d.get("severity", 1)),
            verdict=str(d.get("verdict", "false")),
            status=str(d.get("status", "confirmed")),
            keywords=tuple(d.get("keywords") or ()),
            confirmed_at=str(d.get("confirmed_at") or ""),
            variants=tuple(str(v) for v in d.get("variants") or ()),
            cluster=str(d.get("cluster") or ""),
            aliases=tuple(str(a) for a in d.get("aliases") or ()),
            revised_at=int(d.get("revised_at") or 0),
        )


@dataclass(frozen=True, slots=True)
class Debunk:
    """An authoritative debunk of one or more rumors."""

    debunk_id: str
    rumor_ids: tuple[str, ...]
    title: str
    url: str
    publisher: str
    authority: str
    format: str = "article"
    language: str = "zh"
    published_at: str = ""

    @property
    def authority_rank(self) -> int:
        return AUTHORITY_RANK.get(self.authority, len(AUTHORITY_RANK))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rumor_ids"] = list(self.rumor_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Debunk:
        return cls(
            debunk_id=str(d["debunk_id"]),
            rumor_ids=tuple(str(r) for r in d.get("rumor_ids") or ()),
            title=str(d.get("title", "")),
            url=str(d.get("url", "")),
            publisher=str(d.get("publisher", "")),
            authority=str(d.get("authority", "media")),
            format=str(d.get("format", "article")),
            language=str(d.get("language", "zh")),
            published_at=str(d.get("published_at") or ""),
        )


def by_authority(debunks: list[Debunk]) -> list[Debunk]:
    """Most authoritative first, then the most recently published, then by id."""
    ordered = sorted(debunks, key=lambda d: d.debunk_id)
    ordered.sort(key=lambda d: d.published_at, reverse=True)  # ISO 8601 UTC sorts as text
    ordered.sort(key=lambda d: d.authority_rank)
    return ordered


@dataclass
class Catalog:
    """The rumors and debunks of one snapshot, indexed the way ranking reads them."""

    rumors: dict[str, Rumor]
    debunks: dict[str, Debunk]
    debunks_by_rumor: dict[str, list[Debunk]] = field(default_factory=dict)
    model: FeedModel | None = None  # the learned ranker's debunk side, when the snapshot has one
    # claim cluster id -> its rumor ids, sorted, for the clusters of two or more rumors
    siblings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Rumors whose debunk options the live layer changed: the snapshot's precomputed per-option
    # logits no longer line up with them (domain.live.effective_catalog).
    stale_logits: frozenset[str] = frozenset()

    def claim_rumors(self, rumor_id: str) -> tuple[str, ...]:
        """Every rumor id of ``rumor_id``'s claim cluster (just itself when it has no sibling)."""
        rumor = self.rumors.get(rumor_id)
        if rumor is None:
            return (rumor_id,)
        return self.siblings.get(rumor.claim_cluster, (rumor_id,))

    @classmethod
    def build(
        cls, rumors: list[Rumor], debunks: list[Debunk], model: FeedModel | None = None
    ) -> Catalog:
        """Index debunks by rumor, each list in authority order; and rumors by claim cluster."""
        by_rumor: dict[str, list[Debunk]] = {}
        for d in debunks:
            for rid in d.rumor_ids:
                by_rumor.setdefault(rid, []).append(d)
        by_cluster: dict[str, list[str]] = {}
        for r in rumors:
            if r.cluster:
                by_cluster.setdefault(r.cluster, []).append(r.rumor_id)
        return cls(
            rumors={r.rumor_id: r for r in rumors},
            debunks={d.debunk_id: d for d in debunks},
            debunks_by_rumor={rid: by_authority(lst) for rid, lst in by_rumor.items()},
            model=model,
            siblings={c: tuple(sorted(ids)) for c, ids in by_cluster.items() if len(ids) > 1},
        )
