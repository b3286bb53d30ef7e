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

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from matching import LibraryEntry, Matcher, ScoreParams, Thresholds, matcher_library
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
from offline.nightly.provenance import DebunkTexts, skip_reasons
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
) -> tuple[pa.Table, pa.Table]:
    """(tags, review) for ``items`` (columns item_id, text): matches at or above ``high`` are
    tags, those in [low, high) go to review; up to TOP_K rumors per item."""
    matcher = library if isinstance(library, Matcher) else make_matcher(library, thresholds, params)
    claims = dict(zip(matcher.rumor_ids, matcher.claims, strict=True))
    ids = items.column("item_id").to_pylist()
    texts = items.column("text").to_pylist()
    tags: dict[str, list] = {k: [] for k in TAG_SCHEMA.names}
    review: dict[str, list] = {k: [] for k in REVIEW_SCHEMA.names}
    for item, text, found in zip(ids, texts, matcher.match_batch(texts, TOP_K), strict=True):
        for m in found:
            decision = matcher.decide(m.score)
            if decision == "auto":
                for k, v in zip(
                    TAG_SCHEMA.names, (item, m.rumor_id, "matched", m.score), strict=True
                ):
                    tags[k].append(v)
            elif decision == "review":
                row = (item, m.rumor_id, m.score, claims[m.rumor_id], text)
                for k, v in zip(REVIEW_SCHEMA.names, row, strict=True):
                    review[k].append(v)
    return (
        pa.Table.from_pydict(tags, schema=TAG_SCHEMA),
        pa.Table.from_pydict(review, schema=REVIEW_SCHEMA),
    )


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
) -> dict[str, Any]:
    """Match ``items_path`` (then each of ``more_items``: the live item texts) against the
    matcher library of ``library_dir``; write ``out_dir/matched_tags.parquet`` and
    ``out_dir/review_queue.parquet`` atomically; return a summary (texts, auto, review,
    skipped, texts_per_s, ...). Items that are a debunk's text (``titles``, by default those of
    the debunks in ``library_dir``) or whose ``author_type`` is an authority are skipped; the
    ``decided`` pairs ((item_id, rumor_id) -> accepted/rejected) are not queued, the rejected
    ones not tagged."""
    t0 = time.perf_counter()
    library = load_library(Path(library_dir))
    debunks = DebunkTexts(debunk_titles(Path(library_dir)) if titles is None else titles)
    skipped: dict[str, int] = {}
    matcher = make_matcher(library, thresholds, params)
    build_s = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tags_path, review_path = out_dir / "matched_tags.parquet", out_dir / "review_queue.parquet"
    texts = auto = queued = 0
    t1 = time.perf_counter()
    with ExitStack() as stack:
        tags_tmp = stack.enter_context(_aside(tags_path))
        review_tmp = stack.enter_context(_aside(review_path))
        tag_w = stack.enter_context(pq.ParquetWriter(tags_tmp, TAG_SCHEMA))
        rev_w = stack.enter_context(pq.ParquetWriter(review_tmp, REVIEW_SCHEMA))
        for batch in _item_batches([Path(items_path), *more_items], batch_rows):
            kept = drop_skipped(pa.Table.from_batches([batch]), debunks, skipped)
            tags, review = without_decided(*match_items(kept, matcher), decided or {})
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
        "texts_per_s": round(texts / match_s, 1) if match_s > 0 else None,
        "build_s": round(build_s, 3),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "thresholds": {"high": matcher.thresholds.high, "low": matcher.thresholds.low},
        "outputs": {"tags": str(tags_path), "review": str(review_path)},
    }
