"""Delivery state: what each user was served, saw, clicked, shared and dismissed, and daily caps.

It lives outside the snapshots, so a flip never forgets what a user already saw; every key has a
TTL refreshed on write, so state of inactive users expires by itself.
"""

from __future__ import annotations

from domain.delivery import Delivery, DeliveryEvent, day_of
from feature_store import keys

DELIVERY_TTL_S = 30 * 24 * 3600
CAP_TTL_S = 2 * 24 * 3600
# Field prefixes in the delivery hash: event -> prefix; dismissals are kept per rumor.
_PREFIX = {"served": "srv:", "impression": "imp:", "click": "clk:", "share": "shr:"}
_DISMISSED = "dis:"


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


def delivery_field(e: DeliveryEvent) -> str:
    """The field of the delivery hash that ``e`` sets (to its time)."""
    if e.event == "dismiss":
        return _DISMISSED + (e.rumor_id or e.debunk_id)
    return _PREFIX[e.event] + e.debunk_id


def queue_events(pipe, events: list[DeliveryEvent]) -> None:
    """Queue the writes for ``events`` on a (sync or async) pipeline; the caller executes it."""
    touched: set[bytes] = set()
    for e in events:
        key = keys.delivery(e.user_id)
        pipe.hset(key, delivery_field(e), e.ts)
        touched.add(key)
        if e.event == "served":
            cap = keys.daily_caps(e.user_id, day_of(e.ts))
            pipe.hincrby(cap, e.surface, 1)
            pipe.expire(cap, CAP_TTL_S)
    for key in touched:
        pipe.expire(key, DELIVERY_TTL_S)
