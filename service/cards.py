"""Turning ranked candidates into the proto cards the caller receives."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from debunk.v1 import debunk_pb2 as pb
from feature_store.vocab import SURFACE_BIT, SURFACES
from ranking.candidates import Candidate
from ranking.pinned import Pinned
from ranking.pipeline import explain

# proto enum values follow the vocabulary order, offset by the UNSPECIFIED zero.
_SURFACE_ENUM = {s: i + 1 for i, s in enumerate(SURFACES)}


def _ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def to_card(c: Candidate) -> pb.DebunkCard:
    """A DebunkCard for a ranked candidate, with the reason it was chosen."""
    d, e = c.debunk, c.exposure
    assert d is not None, "ranked candidates always carry a debunk"
    reason = pb.Reason(
        action=e.strongest_action + 1,
        exposures=e.exposures,
        first_exposed_at=_ts(e.first_ts),
        last_exposed_at=_ts(e.last_ts),
        surfaces=[_SURFACE_ENUM[s] for s, bit in SURFACE_BIT.items() if e.surface_mask & bit],
        text=explain(c),
    )
    return pb.DebunkCard(
        debunk_id=d.debunk_id,
        rumor_id=c.rumor.rumor_id,
        title=d.title,
        url=d.url,
        publisher=d.publisher,
        score=c.score,
        authority=d.authority,
        format=d.format,
        language=d.language,
        claim=c.rumor.claim,
        verdict=c.rumor.verdict,
        reason=reason,
    )


def pinned_card(pinned: Pinned, why: str) -> pb.DebunkCard:
    """A card pinned on a surface (comments, search, group) rather than ranked for a user."""
    rumor, debunk = pinned.rumor, pinned.debunk
    return pb.DebunkCard(
        debunk_id=debunk.debunk_id,
        rumor_id=rumor.rumor_id,
        title=debunk.title,
        url=debunk.url,
        publisher=debunk.publisher,
        score=pinned.score,
        authority=debunk.authority,
        format=debunk.format,
        language=debunk.language,
        claim=rumor.claim,
        verdict=rumor.verdict,
        reason=pb.Reason(text=why),
    )
