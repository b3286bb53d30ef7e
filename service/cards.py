"""Turning ranked candidates into the proto cards the caller receives.

``to_card`` fills a message field by field (the reference); ``feed_cards_wire`` writes the same
cards as protobuf wire bytes, the static part of each (rumor, debunk) encoded once and kept, for
one ``MergeFromString`` into the reply: upb parses and re-serializes them, so the answer's bytes
are the reference's (tests compare them), at a fraction of the per-field cost. The bytes are
written in C (``service._cardwire``, built at install) or, without it, by ``card_wire`` here."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable

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
_STATIC: dict[tuple[int, int], tuple[Rumor, Debunk, bytes]] = {}
# Field tags of the cards in a reply: RankFeedResponse.cards (1), UserFeed.cards (2).
FEED_CARDS = b"\x0a"
USER_FEED_CARDS = b"\x12"
_DOUBLE, _FLOAT = struct.Struct("<d").pack, struct.Struct("<f").pack
_VARINTS = tuple(bytes((i,)) for i in range(128))

try:  # built at install (setup.py); without it ``card_wire`` writes the same bytes
    from service import _cardwire
except ImportError:  # pragma: no cover - no C compiler at install
    _cardwire = None


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


def _varint(n: int) -> bytes:
    """``n`` as a protobuf varint (negative: its 64-bit two's complement, as int64 fields)."""
    if 0 <= n < 128:
        return _VARINTS[n]
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, raw: bytes) -> bytes:
    """A length-delimited field: tag, length, bytes."""
    return tag + _varint(len(raw)) + raw


def _static_wire(rumor: Rumor, debunk: Debunk) -> bytes:
    """The wire bytes of a card's fixed fields for (rumor, debunk), encoded once and kept."""
    key = (id(rumor), id(debunk))
    hit = _STATIC.get(key)
    if hit is None or hit[0] is not rumor or hit[1] is not debunk:
        if len(_STATIC) >= MAX_TEMPLATES:
            _STATIC.clear()
        hit = _STATIC[key] = (rumor, debunk, _blank(rumor, debunk).SerializeToString())
    return hit[2]


@functools.lru_cache(maxsize=256)
def _surfaces_wire(mask: int) -> bytes:
    """Reason.surfaces (packed) for a surface mask; nothing when it names none."""
    enums = _surface_enums(mask)
    return _field(b"\x2a", bytes(enums)) if enums else b""


def _timestamp(tag: bytes, seconds: int) -> bytes:
    """A Timestamp field holding ``seconds`` (present even at 0, as the reference sets it)."""
    return _field(tag, b"\x08" + _varint(seconds))


def card_wire(c: Candidate) -> bytes:
    """The wire bytes of ``to_card(c)`` (field order aside: the parser takes any order)."""
    assert c.debunk is not None, "ranked candidates always carry a debunk"
    text = explain(c).encode()
    affinity = _FLOAT(c.features.get("affinity", 0.0))
    if c.prebunk:
        reason = b"".join((_field(b"\x32", text), b"\x45", affinity, b"\x38\x01"))
        update = b""
    else:
        e = c.exposure
        reason = b"".join((
            b"\x08", _varint(e.strongest_action + 1), b"\x10", _varint(e.exposures),
            _timestamp(b"\x1a", e.first_ts), _timestamp(b"\x22", e.last_ts),
            _surfaces_wire(e.surface_mask), _field(b"\x32", text), b"\x45", affinity,
            b"\x48\x01" if c.update else b"",
        ))  # fmt: skip
        update = b"\x68\x01" if c.update else b""
    static = _static_wire(c.rumor, c.debunk)
    return b"".join((static, b"\x31", _DOUBLE(c.score), _field(b"\x62", reason), update))


def feed_cards_wire(ranked: Iterable[Candidate], tag: bytes = FEED_CARDS) -> bytes:
    """The repeated cards field (``tag``) of a reply holding ``ranked``, as wire bytes for the
    reply's ``MergeFromString``."""
    if _cardwire is None:
        return feed_cards_wire_python(ranked, tag)
    items = []
    for c in ranked:
        e = c.exposure
        assert c.debunk is not None, "ranked candidates always carry a debunk"
        items.append((_static_wire(c.rumor, c.debunk), c.score, c.prebunk, e.strongest_action,
                      e.exposures, e.first_ts, e.last_ts, _surfaces_wire(e.surface_mask),
                      explain(c).encode(), c.features.get("affinity", 0.0), c.update))  # fmt: skip
    return _cardwire.cards(tag, items)


def feed_cards_wire_python(ranked: Iterable[Candidate], tag: bytes = FEED_CARDS) -> bytes:
    """``feed_cards_wire`` written in Python (the C encoder's reference)."""
    return b"".join([_field(tag, card_wire(c)) for c in ranked])


def feeds_wire(
    user_ids: list[str], cards: list[bytes | None] | None, tails: list[bytes | None] | None,
    snapshot_version: str = "", degraded: bool = False,
) -> bytes:  # fmt: skip
    """A RankFeedBatchResponse as wire bytes: one UserFeed per user in order (its user_id,
    ``cards[i]``: its cards field as ``feed_cards_wire(..., USER_FEED_CARDS)`` wrote it,
    ``tails[i]``: its labels as ``label_wire`` wrote them; None for nothing, and a list of
    None may be given as None), then ``snapshot_version`` and ``degraded``: the fields in
    number order, as upb writes them."""
    end = _response_end(snapshot_version, degraded)
    if _cardwire is None:
        return feeds_wire_python(user_ids, cards, tails, end)
    return _cardwire.feeds(user_ids, cards, tails, end)


def _response_end(snapshot_version: str, degraded: bool) -> bytes:
    """A batch response's fields after its feeds: snapshot_version (2), degraded (3)."""
    version = _field(b"\x12", snapshot_version.encode()) if snapshot_version else b""
    return version + (b"\x18\x01" if degraded else b"")


def feeds_wire_python(
    user_ids: list[str], cards: list[bytes | None] | None, tails: list[bytes | None] | None,
    end: bytes = b"",
) -> bytes:  # fmt: skip
    """``feeds_wire``'s feeds written in Python (the C encoder's reference), then ``end``."""
    out = []
    for i, user_id in enumerate(user_ids):
        head = _field(b"\x0a", user_id.encode()) if user_id else b""
        body = head + (cards and cards[i] or b"") + (tails and tails[i] or b"")
        out.append(_field(b"\x0a", body))
    return b"".join(out) + end


@functools.lru_cache(maxsize=256)
def label_wire(experiment: str, arm: str) -> bytes:
    """A UserFeed's experiment (3) and arm (4) fields; an empty one is left out, as proto3
    writes it."""
    fields = ((b"\x1a", experiment), (b"\x22", arm))
    return b"".join(_field(tag, value.encode()) for tag, value in fields if value)
