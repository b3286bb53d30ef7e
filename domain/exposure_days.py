"""How live-ingested exposures add to the snapshot's: per UTC day partial aggregates.

The nightly job covers every log day up to its run date (the snapshot's ``covers_through``);
live ingest keeps one partial aggregate per (user, UTC day, rumor). Unlike a backfilled state
(``domain.exposure_layers``: a whole state that replaces), a day's partial covers only that
day, so the reader adds the days after ``covers_through`` to the snapshot's state by the
nightly's aggregate rule (count sum, first min, last max, strongest action max, surfaces or).
The next nightly covers those days from the logs and the reader stops reading them: no day is
counted twice and none is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from domain.records import ExposureState

# At most this many live days are read after the snapshot's last covered day (the lookback).
MAX_LIVE_DAYS = 30


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


def live_days(covers_through: date | None, today: date) -> list[str]:
    """The UTC days (YYYYMMDD) whose live partials count: after ``covers_through`` through
    ``today``, at most MAX_LIVE_DAYS; only today when the snapshot says nothing."""
    first = today if covers_through is None else covers_through + timedelta(days=1)
    first = max(first, today - timedelta(days=MAX_LIVE_DAYS - 1))
    n = (today - first).days + 1
    return [(first + timedelta(days=i)).strftime("%Y%m%d") for i in range(max(n, 0))]


def day_partial(
    rumor_id: str, ts: int, action: int, surface_bit: int, tag_score: float = 1.0
) -> ExposureState:
    """One exposure as a partial aggregate (one count, first = last = its time), with the score
    of the tag it met the rumor through."""
    return ExposureState(rumor_id, 1, ts, ts, action, surface_bit, (), tag_score)
