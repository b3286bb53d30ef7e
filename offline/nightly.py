"""The nightly job: join the exposure logs with the tagged items, then materialize into Redis."""

from __future__ import annotations

import json
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from feature_store.connection import RedisSettings
from offline import catalog
from offline.exposures import join_exposures, partitions, write_parquet_atomic
from offline.materialize import materialize

DEFAULT_LOOKBACK_DAYS = 30


def window(run_date: date, lookback_days: int, available: list[str]) -> list[str]:
    """The partitions inside the lookback window ending on ``run_date`` that exist."""
    first = run_date - timedelta(days=lookback_days - 1)
    return [d for d in available if first.isoformat() <= d <= run_date.isoformat()]


def run_nightly(
    data: Path,
    run_date: date,
    state_dir: Path,
    settings: RedisSettings,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    keep_versions: int = 2,
) -> dict[str, Any]:
    """Run the whole nightly job for ``run_date``; returns (and saves) the run summary."""
    started = time.perf_counter()
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    debunks = catalog.load_debunks(catalog.find_input(data, catalog.DEBUNK_FILES))
    tags = catalog.load_tags(catalog.find_input(data, catalog.TAG_FILES))
    dates = window(run_date, lookback_days, partitions(data / "exposures"))
    state, join = join_exposures(data / "exposures", tags, dates=dates)
    state_path = write_parquet_atomic(state, state_dir / "exposures.parquet")
    meta = {
        "run_date": run_date.isoformat(),
        "first_dt": dates[0] if dates else "",
        "last_dt": dates[-1] if dates else "",
    }
    client = settings.sync_client()
    try:
        written = materialize(client, state_path, rumors, debunks, meta=meta, keep=keep_versions)
    finally:
        client.close()
    summary = {
        "run_date": run_date.isoformat(),
        "partitions": dates,
        "join": join.as_dict(),
        "snapshot": written.as_dict(),
        "rumors": len(rumors),
        "debunks": len(debunks),
        "tagged_items": tags.num_rows,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    _save_summary(state_dir / "runs" / f"{run_date.isoformat()}.json", summary)
    return summary


def _save_summary(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    os.replace(tmp, path)
