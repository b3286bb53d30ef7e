"""An export folder's ledger: the last stream id the folder holds, recorded (atomically) after
the store acknowledged it; a stream export reads it to refuse a store that rolled back."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_ledger(out: Path, name: str, error: type[Exception]) -> str | None:
    """The cursor recorded in ``out/name`` (None when there is none); ``error`` when the file
    cannot be read."""
    try:
        return str(json.loads((out / name).read_text())["cursor"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        raise error(f"{out / name}: unreadable export ledger ({e})") from None


def write_ledger(out: Path, name: str, cursor: str) -> None:
    """Record ``cursor`` in ``out/name``: written aside, then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"cursor": cursor}))
    os.replace(tmp, out / name)
