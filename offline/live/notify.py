"""Notify a rumor's spreaders through the outbox: on confirmation and on a changed verdict.

``notify_spreaders`` reads who commented on or shared the rumor from the nightly exposure state
(the current generation's exposures.parquet), adds the extra spreaders the caller knows of (a
freshly tagged item's, from the backfill), and writes their notifications to the outbox batch by
batch (ranking/spreaders.py decides who and with which debunk; feature_store/outbox.py writes a
batch atomically). A run killed between batches is re-run as it was: the users already notified
are skipped by their once-markers, the others are notified.

Users over their push cap are skipped and counted, not queued: the once-marker is not set, so
the next run for the rumor (a re-run the next day, or a verdict change) reaches them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from domain.experiments import running
from domain.ids import InvalidId, check_id, valid_id
from domain.live import effective_catalog
from domain.records import Catalog, Rumor
from domain.vocab import NOTIFY_REASONS
from feature_store import experiments, outbox
from feature_store.live_catalog import read_layer
from feature_store.snapshot_catalog import load_catalog
from feature_store.snapshots import current_version
from offline.nightly.state import current_generation
from ranking.policy import ServingPolicy, feed_rules
from ranking.spreaders import SPREAD_ACTIONS, Recipient, SpreadRecord, plan_notifications, spreaders

BATCH = 100  # users per script: ~4 ms of Redis time each (make bench-outbox)


class NotifyError(ValueError):
    """The notification run cannot start (bad rumor, reason or state); nothing was written."""


def state_spreaders(state_dir: Path, rumor_id: str) -> list[SpreadRecord]:
    """The comment and share records of ``rumor_id`` in the state's current generation."""
    generation = current_generation(state_dir)
    if generation is None:
        return []
    t = pq.read_table(generation / "exposures.parquet",
                      columns=["user_id", "rumor_id", "strongest_action", "first_ts",
                               "first_share_ts"],
                      filters=[("rumor_id", "=", rumor_id),
                               ("strongest_action", "in", sorted(SPREAD_ACTIONS))])  # fmt: skip
    return spread_records(t)


def spread_records(states: pa.Table) -> list[SpreadRecord]:
    """The comment and share records of exposure states (STATE_SCHEMA columns; e.g. what a
    tag's backfill computed): when each spreader spread it, in unix seconds."""
    keep = pc.is_in(states["strongest_action"], pa.array(sorted(SPREAD_ACTIONS)))
    t = states.filter(keep)
    spread = pc.coalesce(t["first_share_ts"], t["first_ts"])
    seconds = pc.divide(pc.cast(spread, "int64"), 1_000_000).to_pylist()
    return [SpreadRecord(u, a, int(s)) for u, a, s in
            zip(t["user_id"].to_pylist(), t["strongest_action"].to_pylist(), seconds,
                strict=True)]  # fmt: skip


def _rumor(catalog: Catalog, rumor_id: str, reason: str) -> Rumor:
    """The rumor to notify about, or NotifyError: known, confirmed, with a debunk."""
    try:
        check_id(rumor_id, "rumor_id")
    except InvalidId as e:
        raise NotifyError(str(e)) from None
    if reason not in NOTIFY_REASONS:
        raise NotifyError(f"reason must be one of {', '.join(NOTIFY_REASONS)}, not {reason!r}")
    rumor = catalog.rumors.get(rumor_id)
    if rumor is None:
        raise NotifyError(f"unknown rumor {rumor_id!r}: not in the catalog")
    if not rumor.confirmed:
        raise NotifyError(f"rumor {rumor_id!r} is {rumor.status}: only confirmed rumors notify")
    if not catalog.debunks_by_rumor.get(rumor_id):
        raise NotifyError(f"rumor {rumor_id!r} has no debunk to notify with")
    return rumor


def _recipients(
    client: redis.Redis, version: str | None, users: list[str], rumor_id: str, now: int,
    policy: ServingPolicy,
) -> list[Recipient]:  # fmt: skip
    """The store's view of ``users``: once-marker, delivery, model side and experiment arm."""
    exp = running(experiments.load_all(client).values(), now)
    out = []
    for user, (notified, delivery, model) in zip(
        users, outbox.read_users(client, version, users, rumor_id, now), strict=True
    ):
        arm = exp.arm_of(user) if exp is not None else None
        out.append(Recipient(user, notified, delivery, model, feed_rules(policy, arm),
                             exp.name if exp else "", arm.name if arm else ""))  # fmt: skip
    return out


def notify_spreaders(
    client: redis.Redis,
    state_dir: Path,
    rumor_id: str,
    reason: str = "confirmed",
    now: float | None = None,
    *,
    extra: Iterable[SpreadRecord] = (),
    catalog: Catalog | None = None,
    policy: ServingPolicy | None = None,
    batch: int = BATCH,
) -> dict[str, Any]:
    """Write the notifications of ``rumor_id``'s spreaders to the outbox (see module doc);
    returns counts. ``catalog``: the catalog to check the rumor in and pick debunks from
    (default: the current snapshot's with the live layer over it, as the service serves it).
    NotifyError before anything is written when the rumor is unknown, not confirmed or without
    a debunk, or the reason is not one of NOTIFY_REASONS."""
    started = time.perf_counter()
    now_s = int(time.time() if now is None else now)
    policy = policy or ServingPolicy()
    version = current_version(client)
    if catalog is None:
        base = load_catalog(client, version) if version else Catalog.build([], [])
        catalog = effective_catalog(base, read_layer(client).layer)
    rumor = _rumor(catalog, rumor_id, reason)
    extra = list(extra)
    if current_generation(state_dir) is None and not extra:
        raise NotifyError(f"{state_dir}: no nightly exposure state (run `debunk nightly`)")
    users = spreaders([*state_spreaders(state_dir, rumor_id), *extra])
    invalid = sum(1 for u in users if not valid_id(u))
    users = [u for u in users if valid_id(u)]
    counts: Counter[str] = Counter({"invalid_id": invalid} if invalid else {})
    batches = 0
    for at in range(0, len(users), batch):
        recipients = _recipients(client, version, users[at : at + batch], rumor_id, now_s, policy)
        planned, skipped = plan_notifications(
            rumor, catalog, recipients, cap=policy.push_daily_cap, reason=reason, now=now_s
        )
        counts.update(skipped)
        counts.update(outbox.append_batch(client, planned, policy.push_daily_cap))
        batches += 1
    return {
        "rumor_id": rumor_id, "reason": reason, "version": version or "", "spreaders": len(users),
        "notified": counts.pop("notified", 0), "skipped": dict(sorted(counts.items())),
        "batches": batches, "push_daily_cap": policy.push_daily_cap,
        "seconds": round(time.perf_counter() - started, 3),
    }  # fmt: skip
