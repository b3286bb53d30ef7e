"""The id rules of every contract: which strings may name a user, item, rumor, debunk or arm.

An id that passes ``check_id`` can be put in a Redis key without addressing another key: no brace,
glob character, whitespace or separator.
"""

from __future__ import annotations

import re

MAX_ID_BYTES = 128
ID_ALPHABET = "A-Za-z0-9_.@:+/=-"
# The same rule as a whole-string regex, for vectorised checks (pyarrow's match_substring_regex).
ID_PATTERN = r"^[A-Za-z0-9_.@:+/=-]{1,128}$"
_ID_RE = re.compile(r"[A-Za-z0-9_.@:+/=-]{1,128}")
_IDS_RE = re.compile(r"(?:[A-Za-z0-9_.@:+/=-]{1,128}\n)*")


class InvalidId(ValueError):
    """An ID that may not be used in a key."""


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid ID, else raise InvalidId naming what was wrong."""
    if not isinstance(value, str) or not value:
        raise InvalidId(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_BYTES:
        raise InvalidId(f"{what} is longer than {MAX_ID_BYTES} characters")
    if not _ID_RE.fullmatch(value):
        raise InvalidId(f"{what} may only contain letters, digits and _ . @ : + / = -")
    return value


def valid_id(value: str) -> bool:
    """Whether ``value`` may be used in a key (check_id without the exception)."""
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))


def all_valid_ids(values: list[str]) -> bool:
    """Whether every one of ``values`` is a valid id (``valid_id`` of each): one regex pass over
    them joined by a newline, ~8x faster than one by one. The newline is not in the alphabet,
    and the count of newlines is checked, so an id holding one cannot read as two valid ids."""
    try:
        joined = "\n".join(values)
    except TypeError:  # a value that is not a string
        return False
    if joined.count("\n") != len(values) - 1:
        return not values
    return _IDS_RE.fullmatch(joined + "\n") is not None
