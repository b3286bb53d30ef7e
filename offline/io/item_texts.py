"""The reader for an item-texts file an operator hands ``debunk items add``: Parquet, JSON Lines
or CSV of the item-texts contract (item_id, text, created_at, optional author_type), all or
nothing: a bad row fails the file with its line and the reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from domain.ids import InvalidId, check_id
from domain.rows import iso_utc
from offline.io.catalog import InputError, records
from offline.io.contracts import ITEM_SCHEMA

ITEM_TEXT_FILES = (".parquet", ".jsonl", ".csv")
# The contract's columns, with the optional author type the provenance rule reads.
LIVE_ITEM_SCHEMA = ITEM_SCHEMA.append(pa.field("author_type", pa.string()))


def load_item_texts(path: Path) -> pa.Table:
    """The rows of ``path`` as a LIVE_ITEM_SCHEMA table in file order; InputError naming the
    file and line for a missing or bad column, an invalid or repeated id, or an empty text."""
    path = Path(path)
    if path.suffix not in ITEM_TEXT_FILES:
        raise InputError(f"{path}: item texts come as .parquet, .jsonl or .csv")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    rows: dict[str, list[Any]] = {name: [] for name in LIVE_ITEM_SCHEMA.names}
    seen: set[str] = set()
    try:
        for n, rec in records(path):
            row = _row(rec, f"{path}:{n}")
            if row[0] in seen:
                raise InputError(f"{path}:{n}: item_id {row[0]!r} is twice in the file")
            seen.add(row[0])
            for name, value in zip(LIVE_ITEM_SCHEMA.names, row, strict=True):
                rows[name].append(value)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot be read: {e}") from None
    if not seen:
        raise InputError(f"{path}: no item texts")
    return pa.table(rows, schema=LIVE_ITEM_SCHEMA)


def _row(rec: Any, where: str) -> tuple[str, str, Any, str | None]:
    """(item_id, text, created_at, author_type) of one record, validated."""
    if not isinstance(rec, dict):
        raise InputError(f"{where}: not an object")
    try:
        item = check_id(rec.get("item_id"), "item_id")
    except InvalidId as e:
        raise InputError(f"{where}: {e}") from None
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: text must be a non-empty string")
    if rec.get("created_at") in (None, ""):
        raise InputError(f"{where}: created_at is missing")
    try:
        created = datetime.fromisoformat(iso_utc(rec["created_at"]).replace("Z", "+00:00"))
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: created_at is not a time: {e}") from None
    author = rec.get("author_type")
    if author is not None and not isinstance(author, str):
        raise InputError(f"{where}: author_type must be a string")
    return item, text, created, author or None
