"""The shared vocabulary of the input contracts: surfaces, actions, categories, authorities.

Both sides read the same lists, so an action's strength or an authority's rank means the same
thing in the nightly job, in the snapshot and in the service.
"""

from __future__ import annotations

SURFACES: tuple[str, ...] = ("feed", "search", "comment", "group", "push", "other")
# Ordered weakest to strongest: the index is the strength.
ACTIONS: tuple[str, ...] = ("impression", "click", "like", "comment", "share")
CATEGORIES: tuple[str, ...] = (
    "policy",
    "emergency",
    "disaster",
    "epidemic",
    "public_safety",
    "livelihood",
    "economy",
    "other",
)
VERDICTS: tuple[str, ...] = ("false", "misleading", "disputed")
RUMOR_STATUSES: tuple[str, ...] = ("confirmed", "withdrawn")
# Ordered most authoritative first: the index is the rank (0 = most authoritative).
AUTHORITIES: tuple[str, ...] = ("official", "platform", "fact_checker", "media")
FORMATS: tuple[str, ...] = ("article", "video", "card")
TAG_SOURCES: tuple[str, ...] = ("manual", "matched")
DEBUNK_EVENTS: tuple[str, ...] = ("served", "impression", "click", "dismiss", "share")
# Why a rumor's spreaders are notified (the outbox's ``reason`` field).
NOTIFY_REASONS: tuple[str, ...] = ("confirmed", "verdict_changed")

ACTION_STRENGTH: dict[str, int] = {a: i for i, a in enumerate(ACTIONS)}
SURFACE_BIT: dict[str, int] = {s: 1 << i for i, s in enumerate(SURFACES)}
AUTHORITY_RANK: dict[str, int] = {a: i for i, a in enumerate(AUTHORITIES)}


def surfaces_from_mask(mask: int) -> list[str]:
    """The surface names set in a bitmask built with SURFACE_BIT."""
    return [s for s, bit in SURFACE_BIT.items() if mask & bit]
