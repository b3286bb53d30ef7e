"""Screening of live exposures: the nightly job's row rules, then the tagged-items filter.

A live exposure is a log row (user_id, item_id, ts, surface, action) arriving one by one rather
than in a Parquet partition. The same rules decide what is a bad row (the first failing check
names the reason, as the nightly's rejects do), plus what a key needs (valid ids) and what the
live layer can hold (a time inside the lookback window, not in the future). Good rows on items
not tagged now are counted and dropped; rows before the snapshot's watermark are counted
(``covered``) and dropped too: the logs are their truth (the nightly read them, or its next run
reads them when they reach the lake late). The rest become per (user, UTC hour, rumor) partial
aggregates in the (user, UTC day) hash's ``HH|rumor`` fields (``domain.exposure_days``),
summed within the batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.delivery import day_of
from domain.exposure_days import add_state, bucket_field, day_partial, hour_of
from domain.ids import valid_id
from domain.records import ExposureState
from domain.vocab import ACTION_STRENGTH, SURFACE_BIT

# A raw exposure as it arrived: user_id, item_id, ts (unix seconds, or text), surface, action.
RawExposure = tuple[str, str, "float | str | None", str, str]
# A batch as raw columns (user_id, item_id, ts, surface, action: bytes, b"" when missing).
Columns = tuple[list[bytes], list[bytes], list[bytes], list[bytes], list[bytes]]
# How far ahead of the receiver's clock a row's time may be (clock skew between hosts).
FUTURE_SKEW_S = 300
# Every id of a column valid at once: the ids joined by newlines (a newline is not an id byte).
_ID_LINES = re.compile(rb"(?:[A-Za-z0-9_.@:+/=-]{1,128}\n)*[A-Za-z0-9_.@:+/=-]{1,128}")
_ACTIONS_B = {a.encode(): v for a, v in ACTION_STRENGTH.items()}
_SURFACES_B = {s.encode(): v for s, v in SURFACE_BIT.items()}


@dataclass
class Screened:
    """One batch after screening: the partials to add, the rejects and the counts."""

    # (user_id, YYYYMMDD) -> "HH|rumor_id" bucket field -> partial aggregate of the batch's rows
    parts: dict[tuple[str, str], dict[str, ExposureState]] = field(default_factory=dict)
    rejects: list[tuple[str, RawExposure]] = field(default_factory=list)
    accepted: int = 0  # rows that passed every rule
    stored: int = 0  # accepted rows on tagged items, at or after the snapshot's watermark
    untagged: int = 0
    covered: int = 0

    def counts(self) -> dict[str, int]:
        """The counters this batch adds (``rejected:<reason>`` per reason)."""
        out = {"accepted": self.accepted, "stored": self.stored, "untagged": self.untagged,
               "covered": self.covered}  # fmt: skip
        for reason, _ in self.rejects:
            key = f"rejected:{reason}"
            out[key] = out.get(key, 0) + 1
        return {k: v for k, v in out.items() if v}


def parse_time(value: float | str | None) -> float | None:
    """A row's time as unix seconds: a number, or ISO 8601 text (naive text is UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        sec = float(value)
    except ValueError:
        pass
    else:
        return sec if math.isfinite(sec) else None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _reason(row: RawExposure, ts: float | None, now: float, window_s: int) -> str | None:
    """Why ``row`` is bad (the first rule it breaks), or None."""
    user, item, raw_ts, surface, action = row
    if not user:
        return "null_or_empty_user_id"
    if not item:
        return "null_or_empty_item_id"
    if ts is None:
        return "null_ts" if raw_ts is None or raw_ts == "" else "unparseable_ts"
    if action not in ACTION_STRENGTH:
        return "unknown_action"
    if surface not in SURFACE_BIT:
        return "unknown_surface"
    if not valid_id(user):
        return "invalid_user_id"
    if not valid_id(item):
        return "invalid_item_id"
    if ts > now + FUTURE_SKEW_S:
        return "ts_in_future"
    if ts <= now - window_s:
        return "ts_outside_window"
    return None


def screen(
    rows: Iterable[RawExposure],
    rumors_of: Callable[[str], tuple[str, ...]],
    *,
    now: float,
    window_s: int,
    live_after: int | None,
    score_of: Callable[[str, str], float] | None = None,
) -> Screened:
    """Screen a batch: ``rumors_of(item)`` names the rumors an item carries now (empty: not
    tagged) and ``score_of(item, rumor)`` the tag's score (1.0 without it); rows before
    ``live_after`` (the snapshot's watermark, unix s) are not stored."""
    out = Screened()
    parts = out.parts
    for row in rows:
        ts = parse_time(row[2])
        reason = _reason(row, ts, now, window_s)
        if reason is not None:
            out.rejects.append((reason, row))
            continue
        out.accepted += 1
        rumors = rumors_of(row[1])
        if not rumors:
            out.untagged += 1
            continue
        if live_after is not None and ts < live_after:
            out.covered += 1
            continue
        out.stored += 1
        sec, action, bit = int(ts), ACTION_STRENGTH[row[4]], SURFACE_BIT[row[3]]
        slot = parts.setdefault((row[0], day_of(ts)), {})
        hour = hour_of(ts)
        for rumor in rumors:
            score = 1.0 if score_of is None else score_of(row[1], rumor)
            part = day_partial(rumor, sec, action, bit, score)
            name = bucket_field(hour, rumor)
            seen = slot.get(name)
            slot[name] = part if seen is None else add_state(seen, part)
    return out


def screen_columns(
    cols: Columns,
    tagged: Mapping[bytes, tuple[str, ...]],
    *,
    now: float,
    window_s: int,
    live_after: int | None,
    score_of: Callable[[str, str], float] | None = None,
) -> Screened:
    """``screen`` of a batch of raw columns, with the same result: when every row passes every
    rule (checked a column at a time: one regex over the joined ids, set lookups, float
    parsing), only the rows on tagged items (``tagged``: item bytes -> rumors) are visited one
    by one; a batch with any bad row is screened row by row."""
    times = clean_times(cols, now, window_s)
    if times is None:
        return screen(decoded(cols), lambda item: tagged.get(item.encode(), ()), now=now,
                      window_s=window_s, live_after=live_after,
                      score_of=score_of)  # fmt: skip
    users, items, _, surfaces, actions = cols
    out = Screened(accepted=len(users))
    hits = [k for k, item in enumerate(items) if item in tagged]
    out.untagged = len(users) - len(hits)
    parts = out.parts
    for k in hits:
        ts = times[k]
        if live_after is not None and ts < live_after:
            out.covered += 1
            continue
        out.stored += 1
        sec, action, bit = int(ts), _ACTIONS_B[actions[k]], _SURFACES_B[surfaces[k]]
        slot = parts.setdefault((users[k].decode(), day_of(ts)), {})
        hour = hour_of(ts)
        item = items[k]
        for rumor in tagged[item]:
            score = 1.0 if score_of is None else score_of(item.decode(), rumor)
            part = day_partial(rumor, sec, action, bit, score)
            name = bucket_field(hour, rumor)
            seen = slot.get(name)
            slot[name] = part if seen is None else add_state(seen, part)
    return out


def clean_times(cols: Columns, now: float, window_s: int) -> list[float] | None:
    """The rows' times when every row of the batch passes every rule, else None."""
    users, items, stamps, surfaces, actions = cols
    if not users:
        return []
    if not (_ID_LINES.fullmatch(b"\n".join(users)) and _ID_LINES.fullmatch(b"\n".join(items))):
        return None
    if not (_ACTIONS_B.keys() >= set(actions) and _SURFACES_B.keys() >= set(surfaces)):
        return None
    times = _times(stamps)
    if times is None or not math.isfinite(sum(times)):
        return None
    if max(times) > now + FUTURE_SKEW_S or min(times) <= now - window_s:
        return None
    return times


def _times(stamps: list[bytes]) -> list[float] | None:
    """A time column as unix seconds (numbers in C, ISO 8601 text row by row); None when a
    time is empty or unreadable."""
    try:
        return list(map(float, stamps))
    except ValueError:
        pass
    out = []
    for raw in stamps:
        sec = parse_time(raw.decode("utf-8", "replace"))
        if sec is None:
            return None
        out.append(sec)
    return out


def decoded(cols: Columns) -> list[RawExposure]:
    """Raw columns as raw exposures (text; an empty time as None)."""
    return [
        (u.decode("utf-8", "replace"), i.decode("utf-8", "replace"),
         t.decode("utf-8", "replace") or None, s.decode("utf-8", "replace"),
         a.decode("utf-8", "replace"))
        for u, i, t, s, a in zip(*cols, strict=True)
    ]  # fmt: skip
