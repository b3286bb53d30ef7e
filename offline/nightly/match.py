"""Offline matching: item texts × the rumor library → auto tags and a human review queue.

``run_match`` streams ``items.parquet`` in batches (bounded memory), matches each batch with the
pure ``matching.Matcher``, and writes ``matched_tags.parquet`` (item_id, rumor_id,
source="matched", score) and ``review_queue.parquet`` (item_id, rumor_id, score, best_claim, text)
aside, moving both into place only when the run completes. Items by official or authority
sources and the debunks' own texts are not matched (``offline/nightly/provenance.py``); the
summary counts them under ``skipped``. Pairs an operator decided (``debunk review``) are not
queued again, and rejected ones are not auto-tagged either (``offline/nightly/review_state.py``);
``debunk items add`` matches its texts with the same rules (``match_texts``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from domain.records import Rumor
from matching import LibraryEntry, Matcher, ScoreParams, Thresholds, matcher_library
from matching.matcher import TopMatches
from offline.io.catalog import (
    DEBUNK_FILES,
    RUMOR_FILES,
    InputError,
    find_input,
    load_debunks,
    load_rumors,
)
from offline.io.contracts import TAG_SCHEMA
from offline.io.tempfiles import temp_path
from offline.nightly.provenance import DebunkTexts, reviewed_authors, skip_reasons
from offline.nightly.review_state import drop_pairs

REVIEW_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("score", pa.float64()),
        ("best_claim", pa.string()),
        ("text", pa.string()),
    ]
)
BATCH_ROWS = 20_000
TOP_K = 3
PARALLEL_MIN = 4_096  # a batch smaller than this is scored in-process (a fork costs more)
MAX_WORKERS = 2


def load_library(library_dir: Path) -> list[LibraryEntry]:
    """The matcher library of ``library_dir/rumors.jsonl`` (or ``.parquet``): the rumors as the
    catalog loader parses them, and the entries ``matching.matcher_library`` keeps (the service
    builds its library the same way)."""
    return matcher_library(load_rumors(find_input(Path(library_dir), RUMOR_FILES)))


def make_matcher(
    library: list[LibraryEntry],
    thresholds: Thresholds | None = None,
    params: ScoreParams | None = None,
) -> Matcher:
    """A matcher built over ``library``."""
    return Matcher(thresholds=thresholds, params=params).build(library)


def match_items(
    items: pa.Table,
    library: list[LibraryEntry] | Matcher,
    thresholds: Thresholds | None = None,
    params: ScoreParams | None = None,
    pool: MatchPool | None = None,
    routed: dict[str, int] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(tags, review) for ``items`` (columns item_id, text, optional author_type): matches at
    or above ``high`` are tags, those in [low, high) go to review, and so do those of a
    reviewed author (``provenance.reviewed_authors``; counted into ``routed`` as
    ``media_author``); up to TOP_K rumors per item. ``pool`` spreads the scoring over worker
    processes (the result is the same). A text that recurs in the batch is scored once (a
    text's score does not depend on the others)."""
    matcher = library if isinstance(library, Matcher) else make_matcher(library, thresholds, params)
    texts, inverse = distinct(items.column("text").to_pylist())
    found = pool.top(texts) if pool is not None else matcher.top(texts, TOP_K)
    top = spread(found, inverse, len(texts))
    auto = top.score >= matcher.thresholds.high
    authors = (
        items.column("author_type").to_pylist() if "author_type" in items.column_names else None
    )
    held = np.array(reviewed_authors(authors, items.num_rows), dtype=bool)
    to_review = auto & held[top.text]
    if routed is not None and to_review.any():
        routed["media_author"] = routed.get("media_author", 0) + int(to_review.sum())
    auto &= ~to_review
    queued = ~auto & (top.score >= matcher.thresholds.low)
    ids = items.column("item_id")
    rumor_ids = pa.array(matcher.rumor_ids, pa.string())
    claims = pa.array(matcher.claims, pa.string())
    a, q = np.flatnonzero(auto), np.flatnonzero(queued)
    tags = pa.table(
        [
            ids.take(top.text[a]),
            rumor_ids.take(top.rumor[a]),
            pa.array(["matched"] * len(a), pa.string()),
            pa.array(top.score[a], pa.float64()),
        ],
        schema=TAG_SCHEMA,
    )
    review = pa.table(
        [
            ids.take(top.text[q]),
            rumor_ids.take(top.rumor[q]),
            pa.array(top.score[q], pa.float64()),
            claims.take(top.rumor[q]),
            items.column("text").take(top.text[q]),
        ],
        schema=REVIEW_SCHEMA,
    )
    return tags, review


def distinct(texts: list[str | None]) -> tuple[list[str | None], np.ndarray]:
    """The distinct texts of ``texts`` in first-seen order, and each text's place among them:
    a fifth of a day's CED reposts repeat a text of their batch (转发微博, a quoted chain)."""
    places: dict[str | None, int] = {}
    inverse = np.fromiter(
        (places.setdefault(t, len(places)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return list(places), inverse


def spread(top: TopMatches, inverse: np.ndarray, n_distinct: int) -> TopMatches:
    """The rows of ``top`` (over the distinct texts, sorted by text) given to every text of
    ``inverse`` (its distinct text's rows), sorted by text: what scoring each text gives."""
    counts = np.bincount(top.text, minlength=n_distinct)
    starts = np.cumsum(counts) - counts
    per_text = counts[inverse]
    ends = np.cumsum(per_text)
    row = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(
        starts[inverse] - (ends - per_text), per_text
    )
    text = np.repeat(np.arange(len(inverse), dtype=np.int64), per_text)
    return TopMatches(text, top.rumor[row], top.score[row])


_WORKER: Matcher | None = None  # the matcher a forked worker process inherits


def _worker_top(texts: list[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Matcher.top`` of one share of a batch, in a worker process."""
    assert _WORKER is not None
    top = _WORKER.top(texts, TOP_K)
    return top.text, top.rumor, top.score


class MatchPool:
    """Worker processes that score shares of a batch with the parent's matcher (inherited by
    fork, so the index is shared copy-on-write and never pickled). Scores do not depend on
    which texts share a call, so the result is the in-process one."""

    def __init__(self, matcher: Matcher, workers: int) -> None:
        global _WORKER
        _WORKER = matcher
        self.matcher = matcher
        self.workers = workers
        self.executor = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
        list(self.executor.map(_worker_top, [[""]] * workers))  # start them now

    def top(self, texts: list[str | None]) -> TopMatches:
        """``Matcher.top(texts, TOP_K)``, a contiguous share per worker."""
        if len(texts) < PARALLEL_MIN:
            return self.matcher.top(texts, TOP_K)
        bounds = np.linspace(0, len(texts), self.workers + 1).astype(int).tolist()
        shares = [texts[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        parts = list(self.executor.map(_worker_top, shares))
        return TopMatches(
            np.concatenate([t + lo for (t, _, _), lo in zip(parts, bounds, strict=False)]),
            np.concatenate([r for _, r, _ in parts]),
            np.concatenate([sc for _, _, sc in parts]),
        )

    def close(self) -> None:
        """Stop the workers."""
        self.executor.shutdown()


def match_workers(requested: int | None = None) -> int:
    """How many processes score a run: ``requested``, else ``DEBUNK_MATCH_WORKERS``, else the
    cores this process may use (at most ``MAX_WORKERS``)."""
    if requested is not None:
        return max(1, requested)
    env = os.environ.get("DEBUNK_MATCH_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def debunk_titles(library_dir: Path) -> list[str]:
    """The titles of the debunks in ``library_dir`` (none when it holds no debunk file)."""
    try:
        path = find_input(Path(library_dir), DEBUNK_FILES)
    except InputError:
        return []
    return [d.title for d in load_debunks(path)]


def drop_skipped(items: pa.Table, debunks: DebunkTexts, skipped: dict[str, int]) -> pa.Table:
    """``items`` without the ones the matcher must not tag (see offline/nightly/provenance.py),
    counting them by reason into ``skipped``."""
    authors = (
        items.column("author_type").to_pylist() if "author_type" in items.column_names else None
    )
    reasons = skip_reasons(items.column("text").to_pylist(), authors, debunks)
    for reason in reasons:
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    if all(r is None for r in reasons):
        return items
    return items.filter(pa.array([r is None for r in reasons]))


def without_decided(
    tags: pa.Table, review: pa.Table, decided: Mapping[tuple[str, str], str]
) -> tuple[pa.Table, pa.Table]:
    """(tags less the rejected pairs, review less every decided pair) of ``decided``
    ((item_id, rumor_id) -> accepted or rejected): an operator's decision is final."""
    if not decided:
        return tags, review
    rejected = [pair for pair, d in decided.items() if d == "rejected"]
    return drop_pairs(tags, rejected), drop_pairs(review, list(decided))


def match_texts(
    items: pa.Table,
    rumors: Iterable,
    titles: Iterable[str],
    decided: Mapping[tuple[str, str], str] | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """(tags, review, skipped) of ``items`` (item_id, text, optional author_type) against the
    matcher library of ``rumors``, with the nightly's thresholds, provenance rule (debunk
    ``titles``, authority authors) and ``decided`` pairs: what ``debunk items add`` applies."""
    skipped: dict[str, int] = {}
    kept = drop_skipped(items, DebunkTexts(titles), skipped)
    tags, review = match_items(kept, make_matcher(matcher_library(rumors)))
    tags, review = without_decided(tags, review, decided or {})
    return tags, review, dict(sorted(skipped.items()))


@contextmanager
def _aside(path: Path) -> Iterator[Path]:
    """A hidden temporary path next to ``path``, removed if it is still there afterwards."""
    tmp = temp_path(path)
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()


def _item_batches(paths: Sequence[Path], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The batches of item_id, text (and author_type where a file has it) of every file."""
    for path in paths:
        source = pq.ParquetFile(path)
        columns = ["item_id", "text"] + (
            ["author_type"] if "author_type" in source.schema_arrow.names else []
        )
        yield from source.iter_batches(batch_size=batch_rows, columns=columns)


def run_match(
    items_path: Path,
    library_dir: Path,
    out_dir: Path,
    thresholds: Thresholds | None = None,
    params: ScoreParams | None = None,
    batch_rows: int = BATCH_ROWS,
    titles: Iterable[str] | None = None,
    more_items: Sequence[Path] = (),
    decided: Mapping[tuple[str, str], str] | None = None,
    rumors: Iterable[Rumor] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Match ``items_path`` (then each of ``more_items``: the live item texts) against the
    matcher library of ``rumors`` (the nightly's: the files with the live layer folded in), by
    default that of ``library_dir``; write ``out_dir/matched_tags.parquet`` and
    ``out_dir/review_queue.parquet`` atomically; return a summary (texts, auto, review,
    skipped, texts_per_s, ...). Items that are a debunk's text (``titles``, by default those of
    the debunks in ``library_dir``) or whose ``author_type`` is an authority are skipped; the
    ``decided`` pairs ((item_id, rumor_id) -> accepted/rejected) are not queued, the rejected
    ones not tagged; a media author's matches are queued, never tagged (``routed_to_review``).
    ``workers`` processes score the batches (``match_workers``; files of fewer
    than ``PARALLEL_MIN`` rows in all are scored in-process)."""
    t0 = time.perf_counter()
    library = load_library(Path(library_dir)) if rumors is None else matcher_library(rumors)
    debunks = DebunkTexts(debunk_titles(Path(library_dir)) if titles is None else titles)
    skipped: dict[str, int] = {}
    routed: dict[str, int] = {}
    matcher = make_matcher(library, thresholds, params)
    build_s = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tags_path, review_path = out_dir / "matched_tags.parquet", out_dir / "review_queue.parquet"
    texts = auto = queued = 0
    t1 = time.perf_counter()
    paths = [Path(items_path), *more_items]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    n_workers = match_workers(workers)
    with ExitStack() as stack:
        pool = None
        if n_workers > 1 and rows >= PARALLEL_MIN:
            pool = MatchPool(matcher, n_workers)
            stack.callback(pool.close)
        tags_tmp = stack.enter_context(_aside(tags_path))
        review_tmp = stack.enter_context(_aside(review_path))
        tag_w = stack.enter_context(pq.ParquetWriter(tags_tmp, TAG_SCHEMA))
        rev_w = stack.enter_context(pq.ParquetWriter(review_tmp, REVIEW_SCHEMA))
        for batch in _item_batches(paths, batch_rows):
            kept = drop_skipped(pa.Table.from_batches([batch]), debunks, skipped)
            tags, review = without_decided(
                *match_items(kept, matcher, pool=pool, routed=routed), decided or {}
            )
            tag_w.write_table(tags)
            rev_w.write_table(review)
            texts += batch.num_rows
            auto += tags.num_rows
            queued += review.num_rows
        tag_w.close()
        rev_w.close()
        os.replace(tags_tmp, tags_path)
        os.replace(review_tmp, review_path)
    match_s = time.perf_counter() - t1
    return {
        "rumors": len(library),
        "texts": texts,
        "auto": auto,
        "review": queued,
        "skipped": dict(sorted(skipped.items())),
        "routed_to_review": dict(sorted(routed.items())),
        "texts_per_s": round(texts / match_s, 1) if match_s > 0 else None,
        "workers": n_workers if pool is not None else 1,
        "build_s": round(build_s, 3),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "thresholds": {"high": matcher.thresholds.high, "low": matcher.thresholds.low},
        "outputs": {"tags": str(tags_path), "review": str(review_path)},
    }
