"""How live-ingested exposures add to the snapshot's: per UTC hour partial aggregates.

Live ingest keeps one partial aggregate per (user, UTC hour, rumor): a hash per (user, UTC
day) whose fields are ``HH|rumor_id`` (``bucket_field``). A snapshot records its watermark
``live_after`` (unix seconds, on an hour boundary): its logs count the rows before it, and
only those (``offline.nightly.cutoff``); live partials count from it on. Unlike a backfilled
state (``domain.exposure_layers``: a whole state that replaces), a bucket covers only its hour,
so the reader adds the buckets at or after the watermark (``live_days`` names the days and the
first hour of each) to the snapshot's state by the nightly's aggregate rule (count sum, first
min, last max, strongest action max, surfaces or). The next nightly's later watermark
supersedes those buckets: no row is counted twice and none is missing. Every consumer uses
``live_days`` and ``bucket_of``; nothing else decides which bucket counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from domain.records import ExposureState

# At most this many live days are read after the snapshot's last covered day (the lookback).
MAX_LIVE_DAYS = 30
BUCKET_S = 3_600  # one live bucket: a UTC hour; a watermark is a multiple of it
DAY_S = 86_400
# A live day: (YYYYMMDD, the first hour of it whose buckets count).
LiveDay = tuple[str, int]


def add_state(a: ExposureState, b: ExposureState) -> ExposureState:
    """Two aggregates of one (user, rumor) over disjoint rows, combined as the join merges them
    (the best tag score too); ``a``'s logits kept."""
    return ExposureState(
        a.rumor_id,
        a.exposures + b.exposures,
        a.first_ts if a.first_ts <= b.first_ts else b.first_ts,
        a.last_ts if a.last_ts >= b.last_ts else b.last_ts,
        a.strongest_action if a.strongest_action >= b.strongest_action else b.strongest_action,
        a.surface_mask | b.surface_mask,
        a.logits,
        a.tag_score if a.tag_score >= b.tag_score else b.tag_score,
    )


def add_days(
    states: list[ExposureState], days: Sequence[Mapping[str, ExposureState]]
) -> list[ExposureState]:
    """The user's states with each live day's partials added; snapshot order first, then the
    rumors only the live days hold, sorted."""
    if len(days) == 1:
        extra = dict(days[0])
    else:
        extra = {}
        for day in days:
            for rumor, part in day.items():
                seen = extra.get(rumor)
                extra[rumor] = part if seen is None else add_state(seen, part)
    if not extra:
        return states
    out = [s if s.rumor_id not in extra else add_state(s, extra.pop(s.rumor_id)) for s in states]
    out.extend(extra[r] for r in sorted(extra))
    return out


def live_days(live_after: int | None, today: date) -> list[LiveDay]:
    """The UTC days (YYYYMMDD) whose live buckets count, each with its first counted hour:
    from the watermark ``live_after`` (unix s) through ``today``, at most MAX_LIVE_DAYS; only
    today when the snapshot has no watermark."""
    if live_after is None:
        first, hour = today, 0
    else:
        at = datetime.fromtimestamp(live_after - live_after % BUCKET_S, UTC)
        first, hour = at.date(), at.hour
    oldest = today - timedelta(days=MAX_LIVE_DAYS - 1)
    if first < oldest:
        first, hour = oldest, 0
    n = (today - first).days + 1
    days = [(first + timedelta(days=i)).strftime("%Y%m%d") for i in range(max(n, 0))]
    return [(d, hour if i == 0 else 0) for i, d in enumerate(days)]


def day_end(day: date) -> int:
    """The watermark of a snapshot covering every row of UTC ``day``: the next midnight."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) + DAY_S


def bucket_field(hour: int, rumor_id: str) -> str:
    """The live day hash's field of one rumor's bucket: ``HH|rumor_id`` (``|`` is outside the
    id alphabet, so the rumor id is all after it)."""
    return f"{hour:02d}|{rumor_id}"


def bucket_of(field: str) -> tuple[int, str]:
    """(hour, rumor_id) of a live day hash's field; a field without an hour (written before
    hourly buckets) is hour 0: it counts only when its whole day is after the watermark."""
    if len(field) > 3 and field[2] == "|":
        return int(field[:2]), field[3:]
    return 0, field


def hour_of(ts: float) -> int:
    """The UTC hour (0-23) of a unix time: its live bucket within its day."""
    return int(ts // BUCKET_S) % 24


def day_partial(
    rumor_id: str, ts: int, action: int, surface_bit: int, tag_score: float = 1.0
) -> ExposureState:
    """One exposure as a partial aggregate (one count, first = last = its time), with the score
    of the tag it met the rumor through."""
    return ExposureState(rumor_id, 1, ts, ts, action, surface_bit, (), tag_score)
