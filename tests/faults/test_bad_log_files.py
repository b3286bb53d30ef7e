"""Log files broken as disks and writers break them fail the run with the file's path, write no
output and leave no temporary file: zero bytes, a truncated file, a corrupt page, a CSV named
.parquet (each through the real ``debunk exposures`` process)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.io.contracts import EXPOSURE_SCHEMA

ROWS = 60_000


def _good_file(path: Path) -> None:
    ts = datetime(2026, 10, 1, tzinfo=UTC)
    table = pa.table(
        {
            "user_id": [f"u{i % 5000}" for i in range(ROWS)],
            "item_id": [f"i{i % 300}" for i in range(ROWS)],
            "ts": [ts] * ROWS,
            "surface": ["feed"] * ROWS,
            "action": ["click"] * ROWS,
        },
        schema=EXPOSURE_SCHEMA,
    )
    pq.write_table(table, path, compression="snappy", row_group_size=20_000)  # pyarrow defaults


def _break(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "zero-byte":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "corrupt-page":  # schema and footer intact, a data page garbled
        for k in range(len(raw) // 3, len(raw) // 3 + 2000):
            raw[k] ^= 0x5A
        path.write_bytes(bytes(raw))
    elif how == "csv-named-parquet":
        path.write_text("user_id,item_id,ts,surface,action\nu1,i1,2026-10-01,feed,click\n")


@pytest.mark.parametrize("how", ["zero-byte", "truncated", "corrupt-page", "csv-named-parquet"])
def test_a_broken_log_file_fails_the_run_naming_it(tmp_path: Path, how: str) -> None:
    part = tmp_path / "logs" / "dt=2026-10-01"
    part.mkdir(parents=True)
    _good_file(part / "part-0.parquet")
    bad = part / "part-1.parquet"
    _good_file(bad)
    _break(bad, how)
    pq.write_table(
        pa.table({"item_id": [f"i{i}" for i in range(300)], "rumor_id": ["r1"] * 300}),
        tmp_path / "tags.parquet",
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "exposures", "--logs", str(tmp_path / "logs"),
         "--tags", str(tmp_path / "tags.parquet"), "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{bad}:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "exposures.parquet").exists()
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not leftovers
