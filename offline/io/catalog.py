"""Readers for the rumor library inputs: rumors, debunks (ClaimReview JSON-LD, JSON Lines, CSV)
and tagged items."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from domain.records import Debunk, Rumor
from domain.rows import RecordError, iso_utc, parse_rumor
from domain.vocab import AUTHORITIES, FORMATS
from offline.io.contracts import TAG_SCHEMA

RUMOR_FILES = ("rumors.jsonl", "rumors.parquet")
DEBUNK_FILES = ("debunks.jsonld", "debunks.jsonl", "debunks.csv")
TAG_FILES = ("tagged_items.parquet", "tagged_items.csv")


class InputError(ValueError):
    """An input that cannot be read; the message names the file (and line or column)."""


def find_input(data: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` present in ``data``."""
    for name in names:
        if (data / name).exists():
            return data / name
    raise InputError(f"{data}: none of {', '.join(names)} found")


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) from JSON Lines, Parquet or CSV."""
    if path.suffix == ".parquet":
        yield from enumerate(pq.read_table(path).to_pylist(), 1)
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from enumerate(csv.DictReader(f), 2)
    else:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{n}: not JSON: {e.msg}") from None


def load_rumors(path: Path) -> list[Rumor]:
    """The rumor library, from JSON Lines or Parquet, each row through ``parse_rumor``; a bad
    row fails the load with the file, the line and the reason."""
    out = []
    for n, rec in records(path):
        try:
            out.append(parse_rumor(rec))
        except RecordError as e:
            raise InputError(f"{path}:{n}: bad rumor record: {e}") from None
    return out


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def debunk_from_claim_review(obj: dict[str, Any]) -> Debunk:
    """A Debunk from one schema.org ClaimReview object."""
    reviewed = obj.get("itemReviewed") or []
    claims = reviewed if isinstance(reviewed, list) else [reviewed]
    rumor_ids = tuple(
        str(c["identifier"]) for c in claims if isinstance(c, dict) and c.get("identifier")
    )
    author = _first(obj.get("author")) or {}
    if isinstance(author, str):
        author = {"name": author}
    authority = author.get("additionalType", "media")
    fmt = obj.get("additionalType", "article")
    return Debunk(
        debunk_id=str(obj.get("identifier") or obj["url"]),
        rumor_ids=rumor_ids,
        title=str(obj.get("headline") or obj.get("name") or obj.get("claimReviewed") or ""),
        url=str(obj.get("url", "")),
        publisher=str(author.get("name", "")),
        authority=authority if authority in AUTHORITIES else "media",
        format=fmt if fmt in FORMATS else "article",
        language=str(obj.get("inLanguage") or "zh"),
        published_at=iso_utc(obj.get("datePublished")),
    )


def load_debunks(path: Path) -> list[Debunk]:
    """Debunks from ClaimReview JSON-LD (an array or @graph), JSON Lines or CSV."""
    if path.suffix in (".jsonld", ".json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not JSON-LD: {e.msg} at line {e.lineno}") from None
        objs = doc.get("@graph", [doc]) if isinstance(doc, dict) else doc
        out = []
        for i, obj in enumerate(objs):
            try:
                out.append(debunk_from_claim_review(obj))
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"{path}: ClaimReview #{i}: {e}") from None
        return out
    out = []
    for n, rec in records(path):
        rumor_ids = rec.get("rumor_ids") or []
        if isinstance(rumor_ids, str):
            rumor_ids = [r for r in rumor_ids.replace(";", ",").split(",") if r]
        try:
            out.append(
                Debunk.from_dict(
                    {
                        **rec,
                        "rumor_ids": rumor_ids,
                        "published_at": iso_utc(rec.get("published_at")),
                    }
                )
            )
        except (KeyError, ValueError) as e:
            raise InputError(f"{path}:{n}: bad debunk record: {e}") from None
    return out


def _read_tags(path: Path) -> pa.Table:
    """The tag file with string ``item_id`` and ``rumor_id`` columns and no null in either."""
    table = pacsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
    for col in ("item_id", "rumor_id"):
        if col not in table.column_names:
            raise InputError(f"{path}: missing column {col!r}")
        table = table.set_column(
            table.column_names.index(col), col, table.column(col).cast(pa.string())
        )
    return table.filter(pc.and_(pc.is_valid(table["item_id"]), pc.is_valid(table["rumor_id"])))


def load_tags(path: Path) -> pa.Table:
    """Tagged items as a table with (at least) string columns ``item_id`` and ``rumor_id``."""
    return _read_tags(path).select(["item_id", "rumor_id"])


def load_sourced_tags(path: Path) -> pa.Table:
    """Tagged items with their provenance (TAG_SCHEMA: item_id, rumor_id, source, score), for
    tag precedence (``ranking/tag_precedence.py``). ``source`` is ``matched`` for the
    matcher's tags and ``manual`` otherwise (also when the column is absent or empty: a
    platform's tag file is its moderators' work); a missing ``score`` is 1.0 for a manual tag
    and 0.0 for a matched one."""
    table = _read_tags(path)
    n = table.num_rows
    names = table.column_names
    sources = table["source"].cast(pa.string()).to_pylist() if "source" in names else [None] * n
    scores = table["score"].cast(pa.float64()).to_pylist() if "score" in names else [None] * n
    source = ["matched" if s == "matched" else "manual" for s in sources]
    score = [
        float(v) if v is not None else (0.0 if s == "matched" else 1.0)
        for v, s in zip(scores, source, strict=True)
    ]
    return pa.table(
        {
            "item_id": table["item_id"],
            "rumor_id": table["rumor_id"],
            "source": pa.array(source, pa.string()),
            "score": pa.array(score, pa.float64()),
        },
        schema=TAG_SCHEMA,
    )
