"""The nightly job: bring the exposure state up to date, then materialize a snapshot into Redis."""

from __future__ import annotations

import json
import os
import resource
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from feature_store.connection import RedisSettings
from feature_store.live_trim import Trimmed, trim_covered
from offline.io import catalog
from offline.io.contracts import TAG_SCHEMA
from offline.io.rejects import write_rejected_tags
from offline.io.tempfiles import sweep_stale_temps, temp_path
from offline.join.engine import DEFAULT_ENGINE, JoinEngine, engine_named, is_remote
from offline.models.train import TrainedModels, train_models
from offline.nightly import cutoff, guards, live_fold
from offline.nightly.guards import FlipGuard
from offline.nightly.id_rejects import write_id_rejects
from offline.nightly.item_index import IndexSummary, update_index
from offline.nightly.live_items import live_items_path
from offline.nightly.match import run_match
from offline.nightly.materialize import ExposureWrite, materialize
from offline.nightly.review_state import load_decisions
from offline.nightly.state import update_state, window
from offline.nightly.tags import (
    item_texts,
    matched_items,
    pinned_item_rumors,
    pinned_item_scores,
    resolve_tags,
)
from ranking.clusters import assign_clusters, summarize

DEFAULT_LOOKBACK_DAYS = 30
NO_OVERRIDE = FlipGuard()  # the default guard: refuse empty and shrunken snapshots


def run_nightly(
    data: Path,
    run_date: date,
    state_dir: Path,
    settings: RedisSettings,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    keep_versions: int = 2,
    train: bool = True,
    engine: JoinEngine | str = DEFAULT_ENGINE,
    guard: FlipGuard = NO_OVERRIDE,
    materialize_on: str = "driver",
    write_tasks: int | None = None,
    logs: Path | str | None = None,
    read_at: float | None = None,
    log_settle_s: int = cutoff.DEFAULT_SETTLE_S,
) -> dict[str, Any]:
    """Run the whole nightly job for ``run_date`` with the join ``engine`` (an engine, or its
    name for engine_named); returns (and saves) the run summary.

    The exposure logs are ``data/exposures`` unless ``logs`` names another folder or a Hadoop
    URI the engine reads. The snapshot's exposures are written by this process
    (``materialize_on="driver"``) or by the Spark engine's executors (``"executors"``, in
    ``write_tasks`` tasks: one Redis connection each).

    The snapshot counts the log rows before its watermark (``offline.nightly.cutoff``: from
    ``read_at``, default now, less ``log_settle_s``, and the run date's last row); the live
    layer counts the rest, and its buckets before the watermark are trimmed after the flip.

    Refuses (``guards.NightlyRefused``, nothing flipped) a run that read no logs, has nothing to
    serve, or would shrink the served snapshot past ``guard``."""
    started = time.perf_counter()
    read_at = time.time() if read_at is None else read_at
    # Live exposures backfilled after this moment may hold tags this run did not read.
    tags_as_of = int(time.time() * 1000)
    swept = sweep_stale_temps(state_dir)  # what killed runs left half-written
    fold = _start_fold(settings, state_dir)  # the live layer as of now, over the input files
    rumors = live_fold.apply_rumors(
        catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES)), fold
    )
    rumors, clusters = assign_clusters(rumors)  # near-identical claims: one claim cluster
    debunks = live_fold.apply_debunks(
        catalog.load_debunks(catalog.find_input(data, catalog.DEBUNK_FILES)), fold
    )
    guards.check_catalog(guard, rumors, debunks)
    runner = engine_named(engine) if isinstance(engine, str) else engine
    exposures = _exposure_write(materialize_on, runner, settings, write_tasks)  # fails early
    exposure_logs = data / "exposures" if logs is None else logs
    guards.check_logs(guard, exposure_logs, run_date, lookback_days, runner)
    tag_file = catalog.find_input(data, catalog.TAG_FILES)
    tags = live_fold.apply_tags(catalog.load_sourced_tags(tag_file), fold)
    tags, unknown = guards.known_tags(tags, rumors)
    write_rejected_tags(
        state_dir / "tag_rejects" / f"tags-{run_date.isoformat()}.parquet",
        unknown, "unknown rumor_id: no rumor of the library has it", str(tag_file),
    )  # fmt: skip
    matched: dict[str, Any] = {}
    texts = [p for p in (data / "items.parquet", live_items_path(state_dir)) if p.exists()]
    if texts:  # the library finds the copies nobody tagged by hand (and those added live)
        decided = {(d.item_id, d.rumor_id): d.decision for d in load_decisions(state_dir).values()}
        matched = run_match(texts[0], data, state_dir / "match", more_items=texts[1:],
                            decided=decided, rumors=rumors,
                            titles=[d.title for d in debunks])  # the folded library  # fmt: skip
        auto = pq.read_table(state_dir / "match" / "matched_tags.parquet")
        tags = pa.concat_tables([tags, auto.select(TAG_SCHEMA.names).cast(TAG_SCHEMA)])
    auto_texts = item_texts(texts, matched_items(tags))  # the auto tags meet their texts
    claims = {r.rumor_id: r.claim for r in rumors}
    tags, precedence = resolve_tags(tags, clusters, auto_texts, claims)  # hand tags first
    confirmed = {r.rumor_id for r in rumors if r.confirmed}
    live_after = cutoff.run_watermark(
        exposure_logs, run_date, runner, read_at=read_at, settle_s=log_settle_s
    )
    state = update_state(
        exposure_logs,
        tags,
        state_dir,
        run_date,
        lookback_days=lookback_days,
        confirmed=confirmed,
        engine=runner,
        live_after=live_after,
    )
    index = _item_index(exposure_logs, state_dir, run_date, lookback_days, runner)
    models = (
        train_night(data, state.exposures, rumors, debunks, run_date, lookback_days)
        if train
        else None
    )
    meta = {"run_date": run_date.isoformat(), "state_run": state.summary["run_id"],
            "live_seq_folded": str(fold.seq), "tags_as_of": str(tags_as_of),
            "live_after": str(live_after)}  # fmt: skip
    ids_rejected = write_id_rejects(
        state.exposures, state_dir / "id_rejects" / f"ids-{run_date.isoformat()}.parquet"
    )
    meta["materialized_on"] = materialize_on
    client = settings.sync_client()
    try:
        shrink = guards.check_shrink(guard, client, state.exposures)
        pinned = item_rumors(tags, confirmed)
        written = materialize(
            client, state.exposures, rumors, debunks, item_rumors=pinned,
            item_scores=pinned_item_scores(tags, pinned), meta=meta, keep=keep_versions,
            models=models, exposures=exposures,
        )  # fmt: skip
        cleared = live_fold.finish_fold(client, fold)  # after the flip: what it covers
        trimmed = _trim(client, settings, written.version, live_after)
    finally:
        client.close()
    summary = {
        "run_date": run_date.isoformat(),
        "state": state.summary,
        "snapshot": written.as_dict(),
        "rumors": len(rumors),
        "confirmed_rumors": len(confirmed),
        "debunks": len(debunks),
        "tagged_items": tags.num_rows,
        "tags_rejected": unknown.num_rows,
        "ids_rejected": ids_rejected,
        "tag_precedence": precedence,
        "clusters": summarize(clusters).as_dict(),
        "shrink_check": shrink,
        "live_after": cutoff.iso(live_after),
        "live_trim": trimmed.as_dict(),
        "live_layer": {
            "seq_folded": fold.seq,
            "entries_read": len(fold.read.raw),
            "entries_cleared": cleared,
        },  # fmt: skip
        "match": matched,
        "item_index": index.as_dict(),
        "models": models.summary if models else {"trained": False, "reason": "--no-train"},
        "stale_temp_files_removed": len(swept),
        "elapsed_s": round(time.perf_counter() - started, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    _save_summary(
        state_dir / "runs" / f"{run_date.isoformat()}-{state.summary['run_id']}.json", summary
    )
    return summary


def _trim(client: Any, settings: RedisSettings, version: str, live_after: int) -> Trimmed:
    """The trim of the live buckets the new snapshot covers (none on a cluster: the trim's
    script spans slots, so covered buckets there go with their TTL)."""
    if settings.cluster:
        return Trimmed()
    return trim_covered(client, version, live_after)


def _start_fold(settings: RedisSettings, state_dir: Path) -> live_fold.Fold:
    """Read the live catalog layer and keep it with the overrides of earlier nights."""
    client = settings.sync_client()
    try:
        return live_fold.start_fold(client, state_dir)
    finally:
        client.close()


def _item_index(
    logs: Path | str, state_dir: Path, run_date: date, lookback_days: int, engine: JoinEngine
) -> IndexSummary:
    """The item-keyed index of the window's local partitions, for tag backfills (a folder of
    Hadoop URIs gets none: its backfill reads the partitions whole)."""
    if is_remote(logs):
        return IndexSummary(skipped_remote=["*"])
    dts = window(run_date, lookback_days, engine.log_partitions(logs))
    return update_index(logs, state_dir, dts, engine)


def _exposure_write(
    where: str, engine: JoinEngine, settings: RedisSettings, tasks: int | None
) -> ExposureWrite | None:
    """Who writes the exposures: None for this process, else the Spark executors."""
    if where == "driver":
        return None
    if where != "executors":
        raise ValueError(f"unknown materialization {where!r}: expected driver or executors")
    from offline.nightly.executor_writer import ExecutorExposures

    return ExecutorExposures(engine, settings, tasks=tasks)


def train_night(
    data: Path,
    exposures: Path,
    rumors: list,
    debunks: list,
    run_date: date,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> TrainedModels:
    """Train both models on the lookback window's debunk events and exposure state."""
    from offline.models.features import read_events

    end = datetime.combine(run_date + timedelta(days=1), datetime.min.time(), UTC)
    events = read_events(
        data / "debunk_events", since=end - timedelta(days=lookback_days), until=end
    )
    return train_models(events, exposures, rumors, debunks)  # the state file, streamed


def item_rumors(tags: pa.Table, confirmed: set[str]) -> dict[str, list[str]]:
    """Tagged item -> the confirmed rumors its comments may pin: every hand tag, or the best
    auto tag of resolved ``tags`` (``offline.nightly.tags.pinned_item_rumors``)."""
    return pinned_item_rumors(tags, confirmed)


def _save_summary(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    os.replace(tmp, path)
