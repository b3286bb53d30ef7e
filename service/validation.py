"""Request validation: every bad request gets INVALID_ARGUMENT with a message that says why."""

from __future__ import annotations

from feature_store.keys import InvalidId, check_id

MAX_FEED_LIMIT = 50


class BadRequest(ValueError):
    """A request the service refuses; the message goes back to the caller as-is."""


def user_id(value: str, field: str = "user_id") -> str:
    """A user id safe to use in a store key."""
    try:
        return check_id(value, field)
    except InvalidId as e:
        raise BadRequest(str(e)) from None


def feed_limit(value: int) -> int:
    """How many cards a feed asks for: 1..50."""
    if not 1 <= value <= MAX_FEED_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_FEED_LIMIT}, got {value}")
    return value
