"""Delivery records: one event on a debunk card, and a user's decoded delivery state."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain import ids
from domain.vocab import DEBUNK_EVENTS, NOTIFY_REASONS, SURFACES


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
    event_id: str = ""  # optional: the caller's id, so a retried call is recorded once

    def __post_init__(self) -> None:
        ids.check_id(self.user_id, "user_id")
        if self.event_id:
            ids.check_id(self.event_id, "event_id")
        ids.check_id(self.debunk_id, "debunk_id")
        if self.rumor_id:
            ids.check_id(self.rumor_id, "rumor_id")
        if self.experiment:
            ids.check_id(self.experiment, "experiment")
        if self.arm:
            ids.check_id(self.arm, "arm")
        if self.event not in DEBUNK_EVENTS:
            raise ids.InvalidId(f"event must be one of {', '.join(DEBUNK_EVENTS)}")
        if self.surface not in SURFACES:
            raise ids.InvalidId(f"surface must be one of {', '.join(SURFACES)}")


@dataclass(frozen=True, slots=True)
class Notification:
    """One push notification to a rumor's spreader, as the outbox holds it."""

    notification_id: str
    user_id: str
    rumor_id: str
    debunk_id: str
    reason: str
    ts: int  # unix seconds
    experiment: str = ""
    arm: str = ""

    def __post_init__(self) -> None:
        for name in ("notification_id", "user_id", "rumor_id", "debunk_id"):
            ids.check_id(getattr(self, name), name)
        if self.reason not in NOTIFY_REASONS:
            raise ids.InvalidId(f"reason must be one of {', '.join(NOTIFY_REASONS)}")
        if self.experiment:
            ids.check_id(self.experiment, "experiment")
        if self.arm:
            ids.check_id(self.arm, "arm")


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


def notification_id(user_id: str, rumor_id: str) -> str:
    """The one notification id a (user, rumor) pair ever gets: a re-run rebuilds the same id."""
    digest = hashlib.sha256(f"{user_id}\x00{rumor_id}".encode()).hexdigest()
    return "ntf-" + digest[:32]


def day_of(ts: float) -> str:
    """The UTC day of a unix time, as YYYYMMDD (the caps key suffix)."""
    return _day(int(ts // 86400))


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return datetime.fromtimestamp(days * 86400, UTC).strftime("%Y%m%d")
