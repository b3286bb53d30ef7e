"""Delivery state: what each user was served, saw, clicked, shared and dismissed, and daily caps.

It lives outside the snapshots, so a flip never forgets what a user already saw; every key has a
TTL refreshed on write, so state of inactive users expires by itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from feature_store import keys
from feature_store.vocab import DEBUNK_EVENTS, SURFACES

DELIVERY_TTL_S = 30 * 24 * 3600
CAP_TTL_S = 2 * 24 * 3600
# Field prefixes in the delivery hash: event -> prefix; dismissals are kept per rumor.
_PREFIX = {"served": "srv:", "impression": "imp:", "click": "clk:", "share": "shr:"}
_DISMISSED = "dis:"


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One event on a debunk card, as the service records it."""

    user_id: str
    debunk_id: str
    rumor_id: str
    surface: str
    event: str
    ts: int  # unix seconds
    experiment: str = ""
    arm: str = ""

    def __post_init__(self) -> None:
        keys.check_id(self.user_id, "user_id")
        keys.check_id(self.debunk_id, "debunk_id")
        if self.rumor_id:
            keys.check_id(self.rumor_id, "rumor_id")
        if self.experiment:
            keys.check_id(self.experiment, "experiment")
        if self.arm:
            keys.check_id(self.arm, "arm")
        if self.event not in DEBUNK_EVENTS:
            raise keys.InvalidId(f"event must be one of {', '.join(DEBUNK_EVENTS)}")
        if self.surface not in SURFACES:
            raise keys.InvalidId(f"surface must be one of {', '.join(SURFACES)}")


@dataclass
class Delivery:
    """A user's delivery state, decoded: debunk_id -> last time, per event; dismissed rumors."""

    served: dict[str, int] = field(default_factory=dict)
    impression: dict[str, int] = field(default_factory=dict)
    click: dict[str, int] = field(default_factory=dict)
    share: dict[str, int] = field(default_factory=dict)
    dismissed_rumors: dict[str, int] = field(default_factory=dict)
    served_today: int = 0

    @property
    def saw_any(self) -> bool:
        """Whether the user saw or clicked any debunk at all."""
        return bool(self.impression or self.click)

    def seen(self, debunk_id: str) -> bool:
        """The user already saw (an impression) or clicked this debunk."""
        return debunk_id in self.impression or debunk_id in self.click


def day_of(ts: float) -> str:
    """The UTC day of a unix time, as YYYYMMDD (the caps key suffix)."""
    return _day(int(ts // 86400))


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return datetime.fromtimestamp(days * 86400, UTC).strftime("%Y%m%d")


def decode(raw: dict[bytes, bytes], served_today: bytes | None = None) -> Delivery:
    """Decode a delivery hash as HGETALL returns it."""
    d = Delivery(served_today=int(served_today or 0))
    for k, v in raw.items():
        name = k.decode()
        prefix, _, ident = name.partition(":")
        target = {
            "srv": d.served,
            "imp": d.impression,
            "clk": d.click,
            "shr": d.share,
            "dis": d.dismissed_rumors,
        }.get(prefix)
        if target is not None and ident:
            target[ident] = int(v)
    return d


def queue_events(pipe, events: list[DeliveryEvent]) -> None:  # noqa: ANN001
    """Queue the writes for ``events`` on a (sync or async) pipeline; the caller executes it."""
    touched: set[bytes] = set()
    for e in events:
        key = keys.delivery(e.user_id)
        if e.event == "dismiss":
            pipe.hset(key, _DISMISSED + (e.rumor_id or e.debunk_id), e.ts)
        else:
            pipe.hset(key, _PREFIX[e.event] + e.debunk_id, e.ts)
        touched.add(key)
        if e.event == "served":
            cap = keys.daily_caps(e.user_id, day_of(e.ts))
            pipe.hincrby(cap, e.surface, 1)
            pipe.expire(cap, CAP_TTL_S)
    for key in touched:
        pipe.expire(key, DELIVERY_TTL_S)
