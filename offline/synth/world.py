"""A deterministic, streaming synthetic world with every input contract of the nightly job.

``synthesize`` writes exposure logs (``dt=`` partitions), the rumor library (rumors, tagged items,
ClaimReview debunks), item texts, the platform's debunk events and the planted truth. Exposures
are generated day by day in chunks of at most about a million rows (one Parquet part per block
of users, written on a worker thread while the next block is generated). Between days only the
cascade frontier (rumor exposures already scheduled for later days), pending debunk events, the
(user, rumor) pairs already served and a bitmap of referenced items are carried, so worlds of
100M+ rows fit in bounded memory: per-user arrays plus a couple of chunks.

This module is the entry point (``synthesize``, ``default_rumors``, the planted experiment's
config ``PlantedExperiment``); the parts live beside it: ``population`` (users), ``library``
(rumors, items, ClaimReviews), ``background`` and ``cascades`` (exposures), ``serving`` and
``experiment`` (debunk events), ``simulation`` (the day loop), ``tables``, ``files`` and
``writers`` (output), with ``streams``, ``timeline``, ``ids`` and ``columns`` under them all.

The shape of the world:
- users: lognormal activity (a heavy tail of very active users), a fanout multiplier
  (a few influencers), a preferred debunk format and a trust in official sources;
- background posts: new items every day, Zipf popularity within a day, fading with age;
- rumors: cascades from seed sharers; each share exposes Poisson(fanout) other users hours
  later; the chance to share decays with the rumor's age, so cascades die within a few days;
- debunk events: exposed users of confirmed rumors are served one of the rumor's published
  debunks at random, and click far more often on their preferred format and (when trusting)
  on official sources: the preferences a ranker should recover.

Determinism: every random draw comes from a PCG64 stream keyed by (seed, purpose, day, ...)
through ``SeedSequence(seed, spawn_key=...)``; nothing reads the clock; JSON keys are sorted.
The same parameters give byte-identical files.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from domain.vocab import DEBUNK_EVENTS
from offline.synth.background import Pools
from offline.synth.cascades import REACH
from offline.synth.experiment import PlantedExperiment, Trial
from offline.synth.files import write_experiment, write_items, write_library, write_truth_users
from offline.synth.library import Library
from offline.synth.population import Users
from offline.synth.simulation import simulate
from offline.synth.timeline import DAY_US
from offline.synth.writers import prune, write_text


def default_rumors(users: int) -> int:
    """The rumor count when none is given: one per thousand users, within [8, 30000]."""
    return min(max(users // 1000, 8), 30_000)


def synthesize(
    out: Path,
    users: int,
    days: int,
    seed: int,
    start: date = date(2026, 10, 1),
    rumors: int | None = None,
    mean_daily: float = 5.0,
    progress: bool = False,
    experiment: PlantedExperiment | None = None,
    reach: float = REACH,
    cards: int = 1,
) -> dict:
    """Write a synthetic world into ``out`` and return its summary (also ``out/world.json``).

    Same arguments, same bytes. Each file is written aside and moved into place, so a killed
    run never leaves a half-written file under a final name; part files of an earlier run in
    ``out`` that this run did not write are removed. ``reach`` (rumor exposure rows per user)
    and ``cards`` (distinct debunks served per user and rumor) make denser worlds for model
    evaluation; their defaults give the original world.
    """
    if isinstance(start, str):
        start = date.fromisoformat(start)
    n_rumors = default_rumors(users) if rumors is None else int(rumors)
    check(users, days, seed, n_rumors, mean_daily, reach, cards)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start_us = (start - date(1970, 1, 1)).days * DAY_US

    population = Users(users, mean_daily, seed)
    lib = Library(seed, n_rumors, start_us, days)
    tagged = write_library(out, lib)
    write_truth_users(out, population)
    per_day = min(max(users // 10, 100), 500_000)
    pools = Pools(len(lib.item_rumor), per_day, days, start_us, seed)
    trial = None if experiment is None else Trial(experiment, users, start, days)
    tally, seed_shares = simulate(
        out, start, days, seed, population, lib, pools, progress, trial, reach, cards
    )
    write_experiment(out, trial)
    for name, keep in tally.parts.items():
        prune(out / name, keep)
    rumor_items, background_items = write_items(out, lib, pools, seed)

    spans = tally.spans()
    summary = {
        "params": {
            "users": users,
            "days": days,
            "seed": seed,
            "start": start.isoformat(),
            "rumors": rumors,
            "mean_daily": mean_daily,
            **({"experiment": trial.planted()} if trial is not None else {}),
            **({"reach": reach} if reach != REACH else {}),
            **({"cards": cards} if cards != 1 else {}),
        },
        "format_version": 1,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "users": users,
        "days": days,
        "seed": seed,
        "rumors": n_rumors,
        "withdrawn_rumors": int((~lib.confirmed).sum()),
        "debunks": len(lib.claim_reviews),
        "items": rumor_items + background_items,
        "rumor_items": rumor_items,
        "background_items": background_items,
        "tagged_items": tagged,
        "exposure_rows": tally.exposure_rows,
        "rumor_exposure_rows": tally.rumor_exposure_rows,
        "background_exposure_rows": tally.exposure_rows - tally.rumor_exposure_rows,
        "exposed_users": int(tally.exposed.sum()),
        "exposed_fraction": round(float(tally.exposed.mean()), 6),
        "rumor_seed_shares": seed_shares,
        "rumors_spanning_2_days": int((spans >= 2).sum()),
        "max_rumor_span_days": int(spans.max()) if n_rumors else 0,
        "exposure_parts_per_day": len(population.blocks) - 1,
        "debunk_event_rows": int(tally.events.sum()),
        "debunk_events": {e: int(c) for e, c in zip(DEBUNK_EVENTS, tally.events, strict=True)},
    }
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_text(text, out / "world.json")
    return summary


def check(
    users: int,
    days: int,
    seed: int,
    rumors: int,
    mean_daily: float,
    reach: float = REACH,
    cards: int = 1,
) -> None:
    """Refuse parameters the id formats or the model cannot take."""
    if not 1 <= users <= 10**8:
        raise ValueError(f"users must be in [1, 100000000], got {users}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0 <= rumors < 10**6:
        raise ValueError(f"rumors must be in [0, 999999], got {rumors}")
    if not mean_daily >= 0:
        raise ValueError(f"mean_daily must be >= 0, got {mean_daily}")
    if not 0 < reach <= 1000:
        raise ValueError(f"reach must be in (0, 1000], got {reach}")
    if not 1 <= cards <= 4:
        raise ValueError(f"cards must be in [1, 4], got {cards}")
