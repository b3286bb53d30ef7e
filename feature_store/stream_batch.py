"""Stream entries of live exposures as raw columns: what ``debunk ingest`` makes of a raw
XREADGROUP or XAUTOCLAIM reply (hiredis' nested lists, no redis-py dict per entry).

An entry holds one row in five fields (``user_id``, ``item_id``, ``ts``, ``surface``,
``action``, in any order, other fields ignored), or many in ``rows`` (one tab-separated line
per row, the fields in that order). A missing field is empty (the screen rejects the row). The
positions of the five fields are worked out once per field layout, so a batch of entries as a
log shipper writes them (one layout) costs a few list comprehensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.exposure_screen import Columns

FIELDS = (b"user_id", b"item_id", b"ts", b"surface", b"action")
ROWS = b"rows"
_EMPTY = b""


@dataclass
class StreamBatch:
    """The entries of one read: their ids, the ids of entries trimmed away while pending
    (nothing to apply, only to acknowledge), and their rows as raw columns."""

    ids: list[bytes] = field(default_factory=list)
    gone: list[bytes] = field(default_factory=list)
    cols: Columns = field(default_factory=lambda: ([], [], [], [], []))

    @property
    def rows(self) -> int:
        """How many rows the entries held."""
        return len(self.cols[0])


def from_entries(entries: list[Any] | None) -> StreamBatch:
    """A StreamBatch from a raw reply's entry list ([id, [field, value, ...] or nil], ...)."""
    batch = StreamBatch()
    by_layout: dict[tuple[bytes, ...], list[list[bytes]]] = {}
    for entry_id, flat in entries or ():
        if not flat:
            batch.gone.append(entry_id)
            continue
        batch.ids.append(entry_id)
        layout = tuple(flat[0::2])
        group = by_layout.get(layout)
        if group is None:
            group = by_layout[layout] = []
        group.append(flat)
    for layout, group in by_layout.items():
        if ROWS in layout:
            _add_packed(batch.cols, group, 2 * layout.index(ROWS) + 1)
        else:
            _add_rows(batch.cols, group, layout)
    return batch


def _add_rows(cols: Columns, group: list[list[bytes]], layout: tuple[bytes, ...]) -> None:
    """Append one-row entries of one layout, a column at a time."""
    for col, name in zip(cols, FIELDS, strict=True):
        if name in layout:
            at = 2 * layout.index(name) + 1
            col.extend([flat[at] for flat in group])
        else:
            col.extend([_EMPTY] * len(group))


def _add_packed(cols: Columns, group: list[list[bytes]], at: int) -> None:
    """Append the rows of packed entries (``rows``: tab-separated lines)."""
    for flat in group:
        lines = flat[at].splitlines()
        if all(line.count(b"\t") == 4 for line in lines):
            parts = b"\t".join(lines).split(b"\t") if lines else []
        else:  # short or long lines: padded with empty fields, or cut at five
            parts = [p for line in lines for p in (line.split(b"\t") + [_EMPTY] * 5)[:5]]
        for k, col in enumerate(cols):
            col.extend(parts[k::5])
