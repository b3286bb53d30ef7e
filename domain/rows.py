"""Raw input rows (a JSON Lines object, a Parquet or CSV row) into domain records, validated:
the one rumor parser both the catalog loader and offline matching use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.ids import InvalidId, check_id
from domain.records import Rumor
from domain.vocab import CATEGORIES, RUMOR_STATUSES, VERDICTS


class RecordError(ValueError):
    """A raw record that does not make a valid record; the message names the field."""


def iso_utc(value: Any) -> str:
    """An ISO 8601 time (or datetime) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC ("" for empty);
    a naive time is taken as UTC."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rumor(raw: Mapping[str, Any]) -> Rumor:
    """A Rumor from one raw input row (the rumors contract), validated: ``rumor_id`` must be a
    valid id; ``category``, ``verdict`` and ``status`` words of the vocabulary (absent: other,
    false, confirmed); ``severity`` an integer 1..5 (absent: 1); ``keywords`` a list or a
    comma/semicolon separated string; ``aliases`` (optional: the expansions operators configure
    for search, e.g. 维C for 维生素C) likewise; ``variants`` a list or one text; ``confirmed_at``
    an ISO 8601 time, normalised to UTC. Other fields are ignored. Raises RecordError."""
    if not isinstance(raw, Mapping):
        raise RecordError(f"a rumor record is an object, got {type(raw).__name__}")
    if raw.get("rumor_id") is None:
        raise RecordError("rumor_id is missing")
    try:
        rumor_id = check_id(str(raw["rumor_id"]), "rumor_id")
    except InvalidId as e:
        raise RecordError(str(e)) from None
    claim = raw.get("claim")
    if claim is not None and not isinstance(claim, str):
        raise RecordError(f"claim must be a string, got {type(claim).__name__}")
    try:
        confirmed_at = iso_utc(raw.get("confirmed_at"))
    except (TypeError, ValueError):
        raise RecordError(
            f"confirmed_at is not an ISO 8601 time: {raw.get('confirmed_at')!r}"
        ) from None
    return Rumor(
        rumor_id=rumor_id,
        claim=claim or "",
        category=_word(raw, "category", CATEGORIES, "other"),
        severity=_severity(raw.get("severity")),
        verdict=_word(raw, "verdict", VERDICTS, "false"),
        status=_word(raw, "status", RUMOR_STATUSES, "confirmed"),
        keywords=_keywords(raw.get("keywords")),
        confirmed_at=confirmed_at,
        variants=_variants(raw.get("variants")),
        aliases=_keywords(raw.get("aliases"), "aliases"),
    )


def _word(raw: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A vocabulary field: one of ``allowed``, ``default`` when absent or empty."""
    value = raw.get(name)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise RecordError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _severity(value: Any) -> int:
    """1..5 from an int or an integer string (CSV); 1 when absent."""
    if value is None or value == "":
        return 1
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        severity = int(float(value))
    except (TypeError, ValueError):
        raise RecordError(f"severity must be an integer from 1 to 5, got {value!r}") from None
    if not 1 <= severity <= 5:
        raise RecordError(f"severity must be an integer from 1 to 5, got {severity}")
    return severity


def _keywords(value: Any, name: str = "keywords") -> tuple[str, ...]:
    """Keywords (or aliases) from a list, or from one string separated by commas or
    semicolons; trimmed, empty ones left out."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    elif not isinstance(value, list | tuple):
        raise RecordError(f"{name} must be a list or a string, got {type(value).__name__}")
    return tuple(k for k in (str(v).strip() for v in value if v is not None) if k)


def _variants(value: Any) -> tuple[str, ...]:
    """Known variant texts: a list (commas inside a variant are kept), or one text; blank ones
    left out."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list | tuple):
        raise RecordError(f"variants must be a list or a string, got {type(value).__name__}")
    return tuple(str(v) for v in value if v is not None and str(v).strip())
