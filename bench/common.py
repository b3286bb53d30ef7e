"""Shared benchmark helpers: child processes with their own peak RSS, timing, plain tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1 << 20


def _proc_status_kb(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (e.g. VmHWM, VmRSS); None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_to_mb(maxrss: int) -> float:
    """ru_maxrss in MB (kilobytes on Linux, bytes on macOS)."""
    return maxrss / MB if sys.platform == "darwin" else maxrss / 1024


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (VmHWM, else getrusage)."""
    kb = _proc_status_kb("VmHWM")
    if kb is not None:
        return round(kb / 1024, 1)
    return round(_maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 1)


def current_rss_mb() -> float:
    """This process's resident set now, in MB (VmRSS, else the peak)."""
    kb = _proc_status_kb("VmRSS")
    return round(kb / 1024, 1) if kb is not None else peak_rss_mb()


@dataclass
class Timer:
    """Wall-clock seconds of a block, read from ``seconds`` once the block is left."""

    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)


@contextmanager
def timed() -> Iterator[Timer]:
    """``with timed() as t: ...`` then ``t.seconds``."""
    t = Timer(_start=time.perf_counter())
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - t._start


@dataclass
class ChildResult:
    """What a child process reported (its last JSON line) and its peak RSS seen by the parent."""

    report: dict[str, Any]
    maxrss_mb: float
    wall_seconds: float


def run_child(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> ChildResult:
    """Run ``cmd``; its last stdout line must be JSON. Raises with its stderr when it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        # Reap the child ourselves: wait4 gives this child's own rusage, not a running maximum.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        why = f"child failed (rc={proc.returncode}): {' '.join(cmd)}"
        raise RuntimeError(f"{why}\n{stderr.strip()}")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"child printed no JSON line: {' '.join(cmd)}\n{stderr.strip()}")
    maxrss = round(_maxrss_to_mb(usage.ru_maxrss), 1)
    return ChildResult(json.loads(lines[-1]), maxrss, round(wall, 3))


def emit(report: dict[str, Any]) -> None:
    """Print the one JSON line a child hands back to its parent."""
    print(json.dumps(report), flush=True)


def machine() -> dict[str, Any]:
    """Where the numbers were taken: CPU count, Python and platform."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def command_line() -> str:
    """The command that produced this run, as one would type it from the repository root."""
    exe = Path(sys.executable)
    with suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return " ".join([str(exe), *sys.argv])


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table: text left-aligned, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    """Numbers with thousands separators; floats to at most 3 significant decimals."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)
