"""A rows-per-second progress bar on a terminal; silent when stderr is not one."""

from __future__ import annotations

import sys

from tqdm import tqdm


class RowProgress:
    """Counts rows as batches are scanned; shows rows/s and the share done on a TTY."""

    def __init__(self, total_rows: int, label: str) -> None:
        self._bar = tqdm(
            total=total_rows,
            desc=label,
            unit=" rows",
            unit_scale=True,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def advance(self, rows: int) -> None:
        self._bar.update(rows)

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
