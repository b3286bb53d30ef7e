"""The operators' review commands: ``debunk review list|accept ID|reject ID`` over the matcher's
review queue (the nightly's ``STATE/match/review_queue.parquet`` and the live queue in Redis),
and ``debunk items add FILE``, which matches new item texts at once: tagged above the high
threshold, queued between the thresholds.

Tags go into the live catalog layer (``feature_store.live_changes``), which the service pins
within a second; decisions are kept in ``STATE/review_decisions.jsonl`` and the texts in
``STATE/live_items/`` for the next nightly; every change is in the live layer's audit stream."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cli import lifecycle


def _state(args: argparse.Namespace) -> Path:
    """The nightly's state folder of --state."""
    return Path(args.state)


def _entry_row(entry) -> dict[str, Any]:
    """A queue entry as ``review list`` shows it."""
    return {"review_id": entry.review_id, **entry.to_dict()}


def _print_queue(out: dict[str, Any]) -> None:
    """``review list`` as lines: id, score, source, item, rumor, claim | text."""
    if not out["entries"]:
        print("the review queue is empty")
    for e in out["entries"]:
        text = e["text"] if len(e["text"]) <= 60 else e["text"][:59] + "…"
        print(f"{e['review_id']}  {e['score']:.3f}  {e['source']:<7}  {e['item_id']}  "
              f"{e['rumor_id']}  {e['best_claim']}  |  {text}")  # fmt: skip


def cmd_review(args: argparse.Namespace) -> int:
    """``debunk review list|accept|reject``."""
    if args.verb == "list":
        if not args.json:
            args.show = _print_queue
        return lifecycle.run_change(args, lambda editor, _: _list(editor, _state(args)))
    if args.verb == "accept":
        args.after = _backfill_all
        return lifecycle.run_change(args, lambda editor, _: _accept(editor, args))
    return lifecycle.run_change(args, lambda editor, _: _reject(editor, args))


def _list(editor, state: Path) -> dict[str, Any]:
    """Every open entry, highest score first."""
    from domain.review import open_queue
    from feature_store.review_queue import read_queue
    from offline.nightly.review_state import load_decisions, nightly_queue

    entries = open_queue(nightly_queue(state), read_queue(editor.client).values(),
                         load_decisions(state))  # fmt: skip
    return {"count": len(entries), "entries": [_entry_row(e) for e in entries]}


def _find(editor, state: Path, rid: str):
    """(entry, live, decision) of review id ``rid``: the open entry (None once decided),
    whether it is in the live queue, and the decision taken (None while open)."""
    from domain.ids import check_id
    from feature_store.live_changes import LiveError
    from feature_store.review_queue import read_queue
    from offline.nightly.review_state import load_decisions, nightly_queue

    check_id(rid, "review_id")
    live = read_queue(editor.client)
    decision = load_decisions(state).get(rid)
    nightly = {e.review_id: e for e in nightly_queue(state)}
    entry = nightly.get(rid) or live.get(rid)
    if entry is None and decision is None:
        raise LiveError(f"no review entry {rid!r} in the nightly's or the live queue")
    return entry, rid in live, decision


def _decide(editor, args: argparse.Namespace, verdict: str) -> tuple[dict[str, Any], Any]:
    """Record ``verdict`` on the entry args.id (a no-op when already so); the summary, and
    the entry when this call decided it (None for a no-op). LiveError for the other verdict."""
    from domain.review import ReviewDecision
    from feature_store.live_changes import LiveError

    entry, _, decision = _find(editor, _state(args), args.id)
    if decision is not None:
        if decision.decision != verdict:
            hint = " (take the tag off with `debunk tag remove`)" if verdict == "rejected" else ""
            raise LiveError(f"review entry {args.id!r} was already {decision.decision}{hint}")
        return {"changed": 0, "review_id": args.id, "decision": verdict}, None
    made = ReviewDecision(entry.review_id, entry.item_id, entry.rumor_id, verdict, entry.score,
                          editor.actor, time.time())  # fmt: skip
    return {"review_id": args.id, "decision": verdict, "made": made}, entry


def _close(editor, args: argparse.Namespace, entry, made, note: str = "") -> int:
    """Keep the decision ``made`` and take ``entry`` off the live queue, audited."""
    from feature_store.review_queue import QueueChange, change_queue, read_queue
    from offline.nightly.review_state import record_decision

    record_decision(_state(args), made)
    op = "del" if entry.review_id in read_queue(editor.client) else "none"
    change = QueueChange("review", entry.review_id, op, None, entry.to_dict(), made.to_dict())
    return change_queue(editor.client, [change], actor=editor.actor,
                        command=f"review {args.verb}", note=note)  # fmt: skip


def _accept(editor, args: argparse.Namespace) -> dict[str, Any]:
    """Tag the entry's item with its rumor (manual, with the match's score), then decide."""
    out, entry = _decide(editor, args, "accepted")
    if entry is None:
        return out
    made = out.pop("made")
    tag = (entry.item_id, entry.rumor_id, "manual", entry.score)
    outcome = editor.tag_all([tag], command="review accept", note=entry.review_id)
    out["tagged"] = [_tagged(entry.item_id, entry.rumor_id, entry.score)] if outcome.changed else []
    out["changed"] = outcome.changed + _close(editor, args, entry, made)
    out["seq"] = outcome.seq
    return out


def _reject(editor, args: argparse.Namespace) -> dict[str, Any]:
    """Decide the entry rejected: never queued or auto-tagged again."""
    out, entry = _decide(editor, args, "rejected")
    if entry is None:
        return out
    made = out.pop("made")
    out["changed"] = _close(editor, args, entry, made, args.reason)
    return out


def _tagged(item_id: str, rumor_id: str, score: float) -> dict[str, Any]:
    """One tag a command put on, as it reports it."""
    return {"item_id": item_id, "rumor_id": rumor_id, "score": round(score, 4)}


def _backfill_all(args: argparse.Namespace, client, out: dict[str, Any]) -> None:
    """The backfill (``lifecycle.backfill``) of every tag the command put on, per rumor."""
    by_rumor: dict[str, list[str]] = {}
    for t in out.get("tagged", []):
        by_rumor.setdefault(t["rumor_id"], []).append(t["item_id"])
    if by_rumor:
        out["backfill"] = {
            r: lifecycle.backfill(args, client, items, r) for r, items in sorted(by_rumor.items())
        }


def cmd_items(args: argparse.Namespace) -> int:
    """``debunk items add FILE``."""
    from offline.io.item_texts import load_item_texts

    args.prepare = lambda a: load_item_texts(Path(a.file))
    args.after = _backfill_all
    return lifecycle.run_change(args, lambda editor, items: _add_items(editor, args, items))


def _carried(editor, item_id: str) -> list[str]:
    """The rumors ``item_id`` carries now: the snapshot's with the live layer's tag change."""
    from domain.live import item_rumors
    from feature_store.live_catalog import snapshot_item_rumors

    snapshot = snapshot_item_rumors(editor.client, editor.version, item_id)
    return item_rumors(snapshot, editor.read.layer.tags.get(item_id))


def _matches(editor, state: Path, items) -> tuple[list, list, dict[str, int]]:
    """(tags to put on, entries to queue, skipped counts) for ``items``: the nightly's rules over
    the effective library, less the pairs decided, carried already, or queued already."""
    from domain.review import ReviewEntry
    from feature_store.review_queue import read_queue
    from offline.nightly.match import match_texts
    from offline.nightly.review_state import load_decisions, nightly_queue

    catalog = editor.catalog
    decided = {(d.item_id, d.rumor_id): d.decision for d in load_decisions(state).values()}
    titles = [d.title for d in catalog.debunks.values()]
    tags, review, skipped = match_texts(items, catalog.rumors.values(), titles, decided)
    found = set(tags["item_id"].to_pylist()) | set(review["item_id"].to_pylist())
    carried = {i: _carried(editor, i) for i in found}
    new_tags = [(t["item_id"], t["rumor_id"], "matched", t["score"]) for t in tags.to_pylist()
                if t["rumor_id"] not in carried[t["item_id"]]]  # fmt: skip
    live, nightly = read_queue(editor.client), {e.review_id for e in nightly_queue(state)}
    rows = [r for r in review.to_pylist() if r["rumor_id"] not in carried[r["item_id"]]]
    entries = [ReviewEntry(r["item_id"], r["rumor_id"], r["score"], r["best_claim"], r["text"])
               for r in rows]  # fmt: skip
    entries = [e for e in entries if e.review_id not in nightly and live.get(e.review_id) != e]
    return new_tags, entries, skipped


def _add_items(editor, args: argparse.Namespace, items) -> dict[str, Any]:
    """Match ``items``; put the tags on (one live change), keep the texts, queue the rest."""
    from feature_store.review_queue import QueueChange, change_queue, queued
    from offline.nightly.live_items import keep_items, new_items

    state = _state(args)
    fresh = new_items(state, items)  # an id reused with another text: nothing applied
    new_tags, entries, skipped = _matches(editor, state, items)
    outcome = editor.tag_all(new_tags, command="items add")
    keep_items(state, fresh)
    kept = [QueueChange("item", r["item_id"], "none", None, None,
                        {"text": r["text"], "created_at": r["created_at"].isoformat()})
            for r in fresh.to_pylist()]  # fmt: skip
    changed = change_queue(editor.client, [queued(e) for e in entries] + kept,
                           actor=editor.actor, command="items add")  # fmt: skip
    return {
        "changed": outcome.changed + changed,
        "seq": outcome.seq,
        "items": items.num_rows,
        "new_items": fresh.num_rows,
        "skipped": skipped,
        "tagged": [_tagged(i, r, s) for i, r, _, s in new_tags],
        "queued": [_entry_row(e) for e in entries],
    }


def add_parsers(sub) -> None:
    """Register ``debunk review`` and ``debunk items`` on the ``debunk`` parser's subcommands."""
    review = sub.add_parser("review", help="the matcher's review queue: list, accept, reject")
    verbs = review.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("list", help="open entries, highest score first")
    s.add_argument("--json", action="store_true", help="print JSON instead of lines")
    s = verbs.add_parser("accept", help="tag the entry's item with its rumor (with backfill)")
    s.add_argument("id", help="the review id `review list` shows")
    s = verbs.add_parser("reject", help="never queue (or auto-tag) the entry's pair again")
    s.add_argument("id", help="the review id `review list` shows")
    s.add_argument("--reason", default="", help="why, for the audit log")
    for s in verbs.choices.values():
        lifecycle.common_options(s)
    review.set_defaults(func=cmd_review)

    items = sub.add_parser("items", help="match new item texts at once (live)")
    verbs = items.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("add", help="Parquet, JSON Lines or CSV: item_id, text, created_at")
    s.add_argument("file")
    lifecycle.common_options(s)
    items.set_defaults(func=cmd_items)
