"""The live catalog layer above a snapshot, and the rule that merges the two: what operators
changed since the last nightly (rumors added, confirmed, withdrawn or updated; debunks added or
changed; item tags added or removed), as plain records. The service and the nightly fold both
call ``effective_catalog`` and ``item_rumors``, so they agree on what a change means."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from domain.records import Catalog, Debunk, Rumor
from domain.rows import RecordError, parse_rumor


@dataclass(frozen=True, slots=True)
class TagChange:
    """The live tag changes of one item: rumors tagged (with source and score) and untagged."""

    added: dict[str, tuple[str, float]] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists sorted: an unchanged value encodes to the same bytes)."""
        added = {r: {"source": s, "score": v} for r, (s, v) in sorted(self.added.items())}
        return {"added": added, "removed": sorted(self.removed)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TagChange:
        """The inverse of ``to_dict``."""
        added = {str(r): (str(v["source"]), float(v["score"])) for r, v in d["added"].items()}
        return cls(added, frozenset(str(r) for r in d["removed"]))

    def tag(self, rumor_id: str, source: str, score: float) -> TagChange:
        """This change with ``rumor_id`` tagged."""
        return TagChange({**self.added, rumor_id: (source, score)}, self.removed - {rumor_id})

    def untag(self, rumor_id: str) -> TagChange:
        """This change with ``rumor_id`` untagged."""
        added = {r: v for r, v in self.added.items() if r != rumor_id}
        return TagChange(added, self.removed | {rumor_id})


@dataclass(frozen=True, slots=True)
class LiveLayer:
    """Everything the live layer holds: full records that replace (or add to) the snapshot's,
    and per-item tag changes; ``seq`` is the layer's change counter (0: never changed)."""

    seq: int = 0
    rumors: dict[str, Rumor] = field(default_factory=dict)
    debunks: dict[str, Debunk] = field(default_factory=dict)
    tags: dict[str, TagChange] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the layer changes nothing."""
        return not (self.rumors or self.debunks or self.tags)


def effective_catalog(base: Catalog, layer: LiveLayer) -> Catalog:
    """The snapshot's catalog with the layer's rumors and debunks replacing or adding to its
    own (``base`` itself when the layer holds no record). Rumors whose debunk options changed
    are listed in ``stale_logits``: logits the snapshot precomputed per option no longer line
    up with them."""
    if not (layer.rumors or layer.debunks):
        return base
    rumors = {**base.rumors, **layer.rumors}
    debunks = {**base.debunks, **layer.debunks}
    merged = Catalog.build(list(rumors.values()), list(debunks.values()), base.model)
    touched = {r for d in layer.debunks.values() for r in d.rumor_ids}
    touched |= {r for d in layer.debunks if d in base.debunks for r in base.debunks[d].rumor_ids}
    merged.stale_logits = frozenset(touched)
    return merged


def item_rumors(snapshot_ids: list[str], change: TagChange | None) -> list[str]:
    """The rumors an item carries: the snapshot's, less those untagged live, then those tagged
    live (in rumor id order)."""
    if change is None:
        return snapshot_ids
    out = [r for r in snapshot_ids if r not in change.removed]
    out += [r for r in sorted(change.added) if r not in out]
    return out


def decode_layer(seq: Any, rumors: dict, debunks: dict, tags: dict) -> LiveLayer:
    """A LiveLayer from the three hashes as HGETALL returns them (JSON values) and the seq."""
    return LiveLayer(
        seq=int(seq or 0),
        rumors={k.decode(): Rumor.from_dict(json.loads(v)) for k, v in rumors.items()},
        debunks={k.decode(): Debunk.from_dict(json.loads(v)) for k, v in debunks.items()},
        tags={k.decode(): TagChange.from_dict(json.loads(v)) for k, v in tags.items()},
    )


# Fields ``rumor update`` may set, and how a change of each revises the rumor's card.
UPDATABLE = ("claim", "category", "severity", "verdict", "keywords", "aliases", "confirmed_at")


def updated_rumor(rumor: Rumor, fields: dict[str, Any], now: int) -> Rumor:
    """``rumor`` with ``fields`` (of UPDATABLE, raw values as a rumor row spells them) set,
    validated by ``domain.rows.parse_rumor``; a new verdict sets ``revised_at`` to ``now`` (its
    card is re-pushed to the users served the old one). Raises RecordError."""
    unknown = set(fields) - set(UPDATABLE)
    if unknown:
        raise RecordError(f"cannot update {', '.join(sorted(unknown))}")
    parsed = parse_rumor({**rumor.to_dict(), **fields})
    new = replace(rumor, **{f: getattr(parsed, f) for f in fields})
    if new.verdict != rumor.verdict:
        new = replace(new, revised_at=now)
    return new


def with_status(rumor: Rumor, status: str, now_iso: str) -> Rumor:
    """``rumor`` confirmed (``confirmed_at`` set when it had none) or withdrawn."""
    if status == "confirmed":
        return replace(rumor, status=status, confirmed_at=rumor.confirmed_at or now_iso)
    return replace(rumor, status=status)
