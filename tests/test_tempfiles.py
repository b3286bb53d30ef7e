"""Temp files carry their writer's pid; a sweep removes those of dead writers and no other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from offline.io.tempfiles import sweep_stale_temps, temp_path, writer_pid


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_temp_paths_name_their_writer(tmp_path: Path) -> None:
    tmp = temp_path(tmp_path / "out.parquet")
    assert tmp.parent == tmp_path and tmp.name == f".out.parquet.{os.getpid()}.tmp"
    assert writer_pid(tmp) == os.getpid()
    assert writer_pid(tmp_path / ".report.tmp-42") == 42
    assert writer_pid(tmp_path / "out.parquet") is None


def test_a_sweep_removes_what_dead_writers_left_and_nothing_else(tmp_path: Path) -> None:
    gone = dead_pid()
    stale = tmp_path / "a" / f".x.parquet.{gone}.tmp"
    stale_dir = tmp_path / f".report.tmp-{gone}"
    live = tmp_path / f".y.parquet.{os.getpid()}.tmp"
    keep = tmp_path / "a" / "x.parquet"
    stale.parent.mkdir()
    stale_dir.mkdir()
    (stale_dir / "summary.json").write_text("{}")
    for p in (stale, live, keep):
        p.write_text("x")
    assert sorted(sweep_stale_temps(tmp_path)) == sorted([stale, stale_dir])
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and keep.exists()
    assert sweep_stale_temps(tmp_path / "missing") == []
