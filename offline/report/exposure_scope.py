"""Which items count as exposing a user to a confirmed rumor: the tags and rumor statuses the
system actually served from, not only the input files.

In the nightly's order: the input rumors and tag file, the overrides the nightly kept of the live
layer (``STATE/catalog_overrides.jsonl``), the live changes made since (an exported audit folder,
entries up to the end of the report's event window, in stream order), then the nightly's matched
tags (``STATE/match/matched_tags.parquet``, and ``--extra-tags``) under the nightly's precedence
(one tag per claim, hand tags before the matcher's). A tag counts for the whole window whatever
its time, as the backfill treats an item's whole lookback audience as exposed; a live withdrawal
takes the rumor out of the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.live import TagChange
from domain.records import Rumor
from offline.io import catalog
from offline.io.contracts import TAG_SCHEMA
from offline.nightly import live_fold
from offline.nightly.tags import resolve_tags
from ranking.clusters import assign_clusters

SOURCES = ("input", "overrides", "live", "matched")
_SEP = "\x1f"


@dataclass
class Scope:
    """The confirmed rumors' tags that define exposure, and where they came from."""

    tags: pa.Table  # TAG_SCHEMA, confirmed rumors only
    summary: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)  # rumor id -> claim, as served


def _keys(tags: pa.Table) -> set[str]:
    """The (item, rumor) pairs of a tag table, joined for set lookups."""
    return set(pc.binary_join_element_wise(tags["item_id"], tags["rumor_id"], _SEP).to_pylist())


def _added(fold: live_fold.Fold) -> set[str]:
    """The (item, rumor) pairs a fold tags."""
    return {f"{i}{_SEP}{r}" for i, c in fold.tags.items() for r in c.added}


def audit_fold(audit_dir: Path, until: datetime) -> tuple[live_fold.Fold, int]:
    """The tag and rumor changes of an exported audit folder up to ``until``, composed in
    stream order into one fold (and how many entries that took)."""
    fold = live_fold.empty_fold()
    files = sorted(audit_dir.glob("*.parquet"))
    if not files:
        raise catalog.InputError(
            f"{audit_dir}: no audit Parquet files (debunk export-audit --out DIR)"
        )
    rows = pa.concat_tables([pq.read_table(f, columns=["stream_id", "ts", "kind", "id", "after"])
                             for f in files]).to_pylist()  # fmt: skip
    rows.sort(key=lambda r: tuple(map(int, r["stream_id"].split("-"))))
    applied = 0
    for row in rows:
        if row["ts"] > until or row["kind"] not in ("tag", "rumor") or not row["after"]:
            continue
        after = json.loads(row["after"])
        if row["kind"] == "tag":
            change = TagChange.from_dict(after)
            fold.tags[row["id"]] = live_fold.then(fold.tags.get(row["id"], TagChange()), change)
        else:
            fold.rumors[row["id"]] = Rumor.from_dict(after)
        applied += 1
    return fold, applied


def _matched(state_dir: Path | None, extra_tags: Path | None) -> pa.Table | None:
    """The nightly's matched tags and any extra tag file, in TAG_SCHEMA (None without)."""
    parts = []
    if state_dir is not None and (state_dir / "match" / "matched_tags.parquet").exists():
        auto = pq.read_table(state_dir / "match" / "matched_tags.parquet")
        parts.append(auto.select(TAG_SCHEMA.names).cast(TAG_SCHEMA))
    if extra_tags is not None and extra_tags.exists():
        parts.append(catalog.load_sourced_tags(extra_tags))
    return pa.concat_tables(parts) if parts else None


def exposure_scope(
    data: Path,
    *,
    state_dir: Path | None = None,
    audit_dir: Path | None = None,
    extra_tags: Path | None = None,
    until: datetime | None = None,
) -> Scope:
    """The tags of confirmed rumors that define exposure (see module doc), with the
    ``exposure_scope`` summary: tags per source, rumors confirmed, what was read."""
    for name, folder in (("--state", state_dir), ("--audit", audit_dir)):
        if folder is not None and not folder.is_dir():
            raise catalog.InputError(f"{name} {folder}: no such folder")
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    tags = catalog.load_sourced_tags(catalog.find_input(data, catalog.TAG_FILES))
    input_keys = _keys(tags)
    kept = live_fold.kept_overrides(state_dir) if state_dir is not None else None
    live, applied = (None, 0)
    if audit_dir is not None:
        live, applied = audit_fold(audit_dir, until or datetime.max.replace(tzinfo=UTC))
    origin: dict[str, set[str]] = {}
    for name, fold in (("overrides", kept), ("live", live)):
        if fold is not None:
            rumors = live_fold.apply_rumors(rumors, fold)
            tags = live_fold.apply_tags(tags, fold)
            origin[name] = _added(fold)
    matched = _matched(state_dir, extra_tags)
    if matched is not None:
        origin["matched"] = _keys(matched) - input_keys
        tags = pa.concat_tables([tags.cast(TAG_SCHEMA), matched])
    rumors, clusters = assign_clusters(rumors)
    confirmed = sorted(r.rumor_id for r in rumors if r.confirmed)
    tags = tags.filter(pc.is_in(tags["rumor_id"], value_set=pa.array(confirmed, pa.string())))
    tags, _ = resolve_tags(tags, clusters)
    summary = {
        "tags": _per_source(tags, origin),
        "confirmed_rumors": len(confirmed),
        "state_dir": str(state_dir) if state_dir is not None else None,
        "audit_dir": str(audit_dir) if audit_dir is not None else None,
        "audit_entries_applied": applied,
        "rumor_overrides": len(kept.rumors) if kept else 0,
        "live_rumor_changes": len(live.rumors) if live else 0,
        "tag_time": "whole window",
    }
    return Scope(tags, summary, {r.rumor_id: r.claim for r in rumors})


def _per_source(tags: pa.Table, origin: dict[str, set[str]]) -> dict[str, int]:
    """How many of the counted tags each source gave: the latest of live, overrides, the
    matcher, else the input file."""
    counts = dict.fromkeys(SOURCES, 0)
    for key in pc.binary_join_element_wise(tags["item_id"], tags["rumor_id"], _SEP).to_pylist():
        name = next((n for n in ("live", "overrides", "matched") if key in origin.get(n, ())),
                    "input")  # fmt: skip
        counts[name] += 1
    return counts
