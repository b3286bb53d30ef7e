"""The matcher's review queue as plain records: one entry per (item, rumor) pair scored between
the thresholds, its stable review id, and the operator's decision on it. The nightly's queue
file, the live queue in Redis and ``debunk review`` all speak these records."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

DECISIONS = ("accepted", "rejected")
SOURCES = ("nightly", "live")


def review_id(item_id: str, rumor_id: str) -> str:
    """The stable id of a pair: ``rv-`` and 12 hex digits of its hash (the same every night)."""
    digest = hashlib.blake2b(f"{item_id}\x1f{rumor_id}".encode(), digest_size=6).hexdigest()
    return f"rv-{digest}"


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """One pair waiting for an operator: the match's score, the rumor's claim, the item's text,
    and where it was queued (``nightly``: the match step's file, ``live``: ``items add``)."""

    item_id: str
    rumor_id: str
    score: float
    best_claim: str
    text: str
    source: str = "live"

    @property
    def review_id(self) -> str:
        """The pair's stable id."""
        return review_id(self.item_id, self.rumor_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the live queue's value, without the id it is filed under)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReviewEntry:
        """The inverse of ``to_dict``."""
        return cls(str(d["item_id"]), str(d["rumor_id"]), float(d["score"]),
                   str(d["best_claim"]), str(d["text"]), str(d.get("source", "live")))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """What an operator decided on a pair (``accepted``: a tag now, ``rejected``: never queued
    or auto-tagged again), by whom and when (unix seconds)."""

    review_id: str
    item_id: str
    rumor_id: str
    decision: str
    score: float
    actor: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of the decisions file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReviewDecision:
        """The inverse of ``to_dict``."""
        return cls(str(d["review_id"]), str(d["item_id"]), str(d["rumor_id"]),
                   str(d["decision"]), float(d["score"]), str(d["actor"]),
                   float(d["ts"]))  # fmt: skip


def open_queue(
    nightly: Iterable[ReviewEntry],
    live: Iterable[ReviewEntry],
    decided: Iterable[str],
) -> list[ReviewEntry]:
    """The entries still waiting: the nightly's and the live ones (the nightly's row for a pair
    in both: every night scores its pairs again), less the decided review ids, sorted by score
    (highest first), then review id."""
    by_id = {e.review_id: e for e in live}
    by_id.update((e.review_id, e) for e in nightly)
    done = set(decided)
    waiting = [e for rid, e in by_id.items() if rid not in done]
    return sorted(waiting, key=lambda e: (-e.score, e.review_id))
