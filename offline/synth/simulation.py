"""The day loop of the synthetic world: each day the cascades are played on, every block of
users gets its background rows merged with its rumor rows (one Parquet part per block) and the
exposed users are served debunks; only the frontier and pending events carry to the next day."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from domain.vocab import DEBUNK_EVENTS
from offline.synth.background import BACKLOG_DAYS, Pools, block_rows
from offline.synth.cascades import REACH, cascade_day, seed_shares
from offline.synth.columns import (
    EVENT_DTYPES,
    EXPOSURE_DTYPES,
    Cols,
    concat,
    merge_by_ts,
    select,
    sort_by_ts,
)
from offline.synth.experiment import Trial
from offline.synth.library import Library
from offline.synth.population import WEEKEND, Users
from offline.synth.serving import serve
from offline.synth.tables import event_table, exposure_table
from offline.synth.timeline import DAY_US
from offline.synth.writers import LOG_OPTIONS, PartWriter, write_parquet


class Tally:
    """What the day loop counts for the summary."""

    def __init__(self, users: int, rumors: int, days: int) -> None:
        self.exposure_rows = 0
        self.rumor_exposure_rows = 0
        self.exposed = np.zeros(users, dtype=np.bool_)
        self.first_day = np.full(rumors, days, dtype=np.int64)
        self.last_day = np.full(rumors, -1, dtype=np.int64)
        self.events = np.zeros(len(DEBUNK_EVENTS), dtype=np.int64)
        self.parts: dict[str, dict[str, set[str]]] = {"exposures": {}, "debunk_events": {}}

    def rumor_day(self, day: int, rows: Cols) -> None:
        """Count one day's rumor exposure rows, who saw them and which rumors were seen."""
        self.rumor_exposure_rows += len(rows["ts"])
        self.exposed[rows["user"]] = True
        hit = np.unique(rows["rumor"])
        self.first_day[hit] = np.minimum(self.first_day[hit], day)
        self.last_day[hit] = np.maximum(self.last_day[hit], day)

    def spans(self) -> np.ndarray:
        """Days between each rumor's first and last exposure, inclusive (0: never seen)."""
        return np.where(self.last_day >= 0, self.last_day - self.first_day + 1, 0)


def write_day(
    folder: Path,
    day: int,
    day_start: int,
    rumor_rows: Cols,
    users: Users,
    pools: Pools,
    seed: int,
    dow: float,
    writer: PartWriter,
) -> int:
    """Background rows of one day, block of users by block, merged with the day's rumor rows
    of those users; one Parquet part per block. Returns the rows written."""
    fresh = pools.created(day + BACKLOG_DAYS)
    block_of = np.searchsorted(users.blocks, rumor_rows["user"], side="right") - 1
    total = 0
    for b in range(len(users.blocks) - 1):
        bg = block_rows(day, day_start, b, users, pools, fresh, seed, dow)
        mine = select(rumor_rows, np.flatnonzero(block_of == b))
        rows = merge_by_ts(bg, {k: mine[k] for k in bg})
        table = exposure_table(rows)
        writer.submit(write_parquet, table, folder / f"part-{b:05d}.parquet", **LOG_OPTIONS)
        total += table.num_rows
    return total


def simulate(
    out: Path,
    start: date,
    days: int,
    seed: int,
    users: Users,
    lib: Library,
    pools: Pools,
    progress: bool,
    trial: Trial | None = None,
    reach: float = REACH,
    cards: int = 1,
) -> tuple[Tally, int]:
    """The day loop: cascades, background, serving; writes the exposure and event partitions.
    Returns the tally and the number of seed shares."""
    start_us = (start - date(1970, 1, 1)).days * DAY_US
    window_end = start_us + days * DAY_US
    seeds = seed_shares(lib, users, seed, reach * users.n / max(lib.n, 1))
    carry = concat([], EXPOSURE_DTYPES)
    events_carry = concat([], EVENT_DTYPES)
    handled = np.empty(0, dtype=np.int64)
    tally = Tally(users.n, lib.n, days)
    parts = {f"part-{b:05d}.parquet" for b in range(len(users.blocks) - 1)}
    bar = tqdm(range(days), desc="synth", unit="day", file=sys.stderr, disable=not progress)
    with PartWriter() as writer:
        for day in bar:
            the_date = start + timedelta(days=day)
            dt = f"dt={the_date.isoformat()}"
            day_start = start_us + day * DAY_US
            day_end = day_start + DAY_US
            lo, hi = np.searchsorted(seeds["ts"], [day_start, day_end])
            pending = concat([carry, select(seeds, np.arange(lo, hi))], EXPOSURE_DTYPES)
            rows, carry = cascade_day(day, pending, lib, users, seed, day_end, window_end)
            tally.rumor_day(day, rows)

            dow = WEEKEND if the_date.weekday() >= 5 else 1.0
            folder = out / "exposures" / dt
            tally.exposure_rows += write_day(
                folder, day, day_start, rows, users, pools, seed, dow, writer
            )
            tally.parts["exposures"][dt] = parts

            new_events, handled = serve(
                day, rows, lib, users, handled, seed, window_end,
                None if trial is None else trial.serve_p, cards,
            )  # fmt: skip
            events = sort_by_ts(concat([events_carry, new_events], EVENT_DTYPES))
            now = events["ts"] < day_end
            today, events_carry = select(events, now), select(events, ~now)
            path = out / "debunk_events" / dt / "part-00000.parquet"
            writer.submit(write_parquet, event_table(today, trial), path, **LOG_OPTIONS)
            tally.parts["debunk_events"][dt] = {"part-00000.parquet"}
            tally.events += np.bincount(today["event"], minlength=len(DEBUNK_EVENTS))
            bar.set_postfix(rows=f"{tally.exposure_rows:,}", refresh=False)
    return tally, len(seeds["ts"])
