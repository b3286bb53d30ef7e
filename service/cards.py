"""Turning ranked candidates into the proto cards the caller receives."""

from __future__ import annotations

import functools

from debunk.v1 import debunk_pb2 as pb
from domain.records import Debunk, Rumor
from domain.vocab import SURFACE_BIT, SURFACES
from ranking.candidates import Candidate
from ranking.pinned import Pinned
from ranking.pipeline import explain

# proto enum values follow the vocabulary order, offset by the UNSPECIFIED zero.
_SURFACE_ENUM = {s: i + 1 for i, s in enumerate(SURFACES)}
# Static card fields per (rumor, debunk) object of a loaded catalog, built once; the objects are
# kept in the entry, so an id is never reused while its entry lives.
MAX_TEMPLATES = 200_000
_TEMPLATES: dict[tuple[int, int], tuple[Rumor, Debunk, pb.DebunkCard]] = {}


def card(rumor: Rumor, debunk: Debunk, score: float, reason: pb.Reason) -> pb.DebunkCard:
    """The card a caller shows: the debunk, the rumor it corrects, and why it is there."""
    out = _blank(rumor, debunk)
    out.score = score
    out.reason.CopyFrom(reason)
    return out


def _blank(rumor: Rumor, debunk: Debunk, out: pb.DebunkCard | None = None) -> pb.DebunkCard:
    """``out`` (or a fresh card) with the static fields of (rumor, debunk) copied from a cached
    template."""
    key = (id(rumor), id(debunk))
    hit = _TEMPLATES.get(key)
    if hit is None or hit[0] is not rumor or hit[1] is not debunk:
        if len(_TEMPLATES) >= MAX_TEMPLATES:
            _TEMPLATES.clear()
        template = pb.DebunkCard(
            debunk_id=debunk.debunk_id, rumor_id=rumor.rumor_id, title=debunk.title,
            url=debunk.url, publisher=debunk.publisher, authority=debunk.authority,
            format=debunk.format, language=debunk.language, claim=rumor.claim,
            verdict=rumor.verdict,
        )  # fmt: skip
        hit = _TEMPLATES[key] = (rumor, debunk, template)
    if out is None:
        out = pb.DebunkCard()
    out.CopyFrom(hit[2])
    return out


def to_card(c: Candidate, out: pb.DebunkCard | None = None) -> pb.DebunkCard:
    """A DebunkCard for a ranked candidate, with the reason it was chosen; written into ``out``
    (e.g. ``reply.cards.add()``, which saves copying the card into the reply) when given."""
    e = c.exposure
    assert c.debunk is not None, "ranked candidates always carry a debunk"
    out = _blank(c.rumor, c.debunk, out)
    out.score = c.score
    reason = out.reason
    reason.text = explain(c)
    reason.model_affinity = c.features.get("affinity", 0.0)
    if c.prebunk:
        reason.prebunk = True
        return out
    if c.update:
        out.update = reason.updated = True
    reason.action = e.strongest_action + 1
    reason.exposures = e.exposures
    reason.first_exposed_at.seconds = e.first_ts
    reason.last_exposed_at.seconds = e.last_ts
    reason.surfaces.extend(_surface_enums(e.surface_mask))
    return out


@functools.lru_cache(maxsize=256)
def _surface_enums(mask: int) -> tuple[int, ...]:
    return tuple(_SURFACE_ENUM[s] for s, bit in SURFACE_BIT.items() if mask & bit)


def pinned_card(pinned: Pinned, why: str) -> pb.DebunkCard:
    """A card pinned on a surface (comments, search, group) rather than ranked for a user."""
    return card(pinned.rumor, pinned.debunk, pinned.score, pb.Reason(text=why))
