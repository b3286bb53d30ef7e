"""Temporary files named after their writer, and the sweep that removes those of dead writers.

Every output is written aside as ``.<name>.<pid>.tmp`` and renamed into place, so readers never
see half a file; a writer killed with SIGKILL cannot clean up, so the next run removes the temp
files (and folders, ``.<name>.tmp-<pid>``) whose pid no longer runs on this host. A temp file of
a live process is never touched, so a sweep is safe while another run writes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from feature_store.liveness import alive

_TEMP_NAME = re.compile(r"^\..+\.(?:(\d+)\.tmp|tmp-(\d+))$")


def temp_path(path: Path) -> Path:
    """The hidden temp path next to ``path`` for this process: ``.<name>.<pid>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def writer_pid(path: Path) -> int | None:
    """The pid in a temp file's name, or None when ``path`` is not one of ours."""
    m = _TEMP_NAME.match(path.name)
    return int(m.group(1) or m.group(2)) if m else None


def sweep_stale_temps(folder: Path) -> list[Path]:
    """Remove, under ``folder``, every temp file or folder whose writer process is gone;
    returns what was removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.rglob(".*tmp*")):
        pid = writer_pid(path)
        if pid is None or pid == os.getpid() or alive(pid) or not os.path.lexists(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
