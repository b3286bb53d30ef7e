"""Turning ranked candidates into the proto cards the caller receives."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from debunk.v1 import debunk_pb2 as pb
from feature_store.records import Debunk, Rumor
from feature_store.vocab import SURFACE_BIT, SURFACES
from ranking.candidates import Candidate
from ranking.pinned import Pinned
from ranking.pipeline import explain

# proto enum values follow the vocabulary order, offset by the UNSPECIFIED zero.
_SURFACE_ENUM = {s: i + 1 for i, s in enumerate(SURFACES)}


def _ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def card(rumor: Rumor, debunk: Debunk, score: float, reason: pb.Reason) -> pb.DebunkCard:
    """The card a caller shows: the debunk, the rumor it corrects, and why it is there."""
    return pb.DebunkCard(
        debunk_id=debunk.debunk_id,
        rumor_id=rumor.rumor_id,
        title=debunk.title,
        url=debunk.url,
        publisher=debunk.publisher,
        score=score,
        authority=debunk.authority,
        format=debunk.format,
        language=debunk.language,
        claim=rumor.claim,
        verdict=rumor.verdict,
        reason=reason,
    )


def to_card(c: Candidate) -> pb.DebunkCard:
    """A DebunkCard for a ranked candidate, with the reason it was chosen."""
    e = c.exposure
    assert c.debunk is not None, "ranked candidates always carry a debunk"
    affinity = c.features.get("affinity", 0.0)
    if c.prebunk:
        reason = pb.Reason(text=explain(c), prebunk=True, model_affinity=affinity)
        return card(c.rumor, c.debunk, c.score, reason)
    reason = pb.Reason(
        action=e.strongest_action + 1,
        exposures=e.exposures,
        first_exposed_at=_ts(e.first_ts),
        last_exposed_at=_ts(e.last_ts),
        surfaces=[_SURFACE_ENUM[s] for s, bit in SURFACE_BIT.items() if e.surface_mask & bit],
        text=explain(c),
        model_affinity=affinity,
    )
    return card(c.rumor, c.debunk, c.score, reason)


def pinned_card(pinned: Pinned, why: str) -> pb.DebunkCard:
    """A card pinned on a surface (comments, search, group) rather than ranked for a user."""
    return card(pinned.rumor, pinned.debunk, pinned.score, pb.Reason(text=why))
