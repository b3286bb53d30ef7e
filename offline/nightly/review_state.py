"""The review queue's state in the state folder: the nightly's queue
(``STATE/match/review_queue.parquet``, written by the match step) and the operators' decisions
(``STATE/review_decisions.jsonl``, one JSON object per decided pair, rewritten aside and
renamed). The match step drops every decided pair from its queue, and rejected pairs from its
auto tags too, so no night re-queues a pair an operator decided."""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.review import ReviewDecision, ReviewEntry
from offline.io.tempfiles import temp_path

DECISIONS = "review_decisions.jsonl"
NIGHTLY_QUEUE = Path("match") / "review_queue.parquet"


def load_decisions(state_dir: Path) -> dict[str, ReviewDecision]:
    """Every decision kept, by review id (none before the first)."""
    path = Path(state_dir) / DECISIONS
    if not path.exists():
        return {}
    out = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = ReviewDecision.from_dict(json.loads(line))
                out[d.review_id] = d
    return out


def record_decision(state_dir: Path, decision: ReviewDecision) -> Path:
    """Keep ``decision`` with the earlier ones: the whole file written aside, then renamed."""
    decisions = load_decisions(state_dir)
    decisions[decision.review_id] = decision
    path = Path(state_dir) / DECISIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with tmp.open("w", encoding="utf-8") as f:
        for rid in sorted(decisions):
            f.write(json.dumps(decisions[rid].to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def decided_pairs(state_dir: Path, decision: str | None = None) -> set[tuple[str, str]]:
    """The (item_id, rumor_id) pairs decided (only those ``decision`` when given)."""
    return {
        (d.item_id, d.rumor_id)
        for d in load_decisions(state_dir).values()
        if decision is None or d.decision == decision
    }


def nightly_queue(state_dir: Path) -> list[ReviewEntry]:
    """The last nightly's review queue (empty before the first match step)."""
    path = Path(state_dir) / NIGHTLY_QUEUE
    if not path.exists():
        return []
    rows = pq.read_table(path).to_pylist()
    return [ReviewEntry(r["item_id"], r["rumor_id"], r["score"], r["best_claim"], r["text"],
                        "nightly") for r in rows]  # fmt: skip


def drop_pairs(table: pa.Table, pairs: Collection[tuple[str, str]]) -> pa.Table:
    """``table`` (with item_id and rumor_id columns) without the rows of ``pairs``."""
    if not pairs or table.num_rows == 0:
        return table
    joined = pc.binary_join_element_wise(table["item_id"], table["rumor_id"], "\x1f")
    off = pa.array([f"{i}\x1f{r}" for i, r in pairs], pa.string())
    return table.filter(pc.invert(pc.is_in(joined, value_set=off)))
