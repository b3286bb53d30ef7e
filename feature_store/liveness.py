"""Who a process is, and whether it still runs: host, pid and the kernel's start time of a pid.

A pid alone is reused by the kernel; a pid with its start time names one process for good. The
snapshot writer and the temp-file sweeper record these, so the next run can tell a writer that
is gone (collect what it left) from one that is still at work (leave it alone).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_PROC = Path("/proc")


def this_host() -> str:
    """This machine's name, as recorded next to a pid (a pid means nothing on another host)."""
    return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()  # the name may hold spaces and parentheses


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), or
    None when there is no such process or no /proc."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` runs (a zombie does not), and, given ``start``, is the same
    process that had that start time (not a later one that got the pid)."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        if _PROC.is_dir():
            return False
        try:  # no /proc: ask the kernel directly
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):
        return False
    return start is None or process_start(pid) == start


def command_name(pid: int) -> str:
    """The kernel's name for ``pid``'s program (/proc/<pid>/comm), or "" when unknown."""
    try:
        return (_PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def me() -> dict[str, object]:
    """This process as a writer record: host, pid and the pid's start time."""
    pid = os.getpid()
    return {"host": this_host(), "pid": pid, "proc_start": process_start(pid)}


def _as_int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def writer_gone(record: dict[str, object]) -> bool:
    """Whether the writer ``record`` (as ``me`` makes it) names a process of this host that no
    longer runs. A writer on another host is never judged gone here."""
    if record.get("host") != this_host():
        return False
    pid = _as_int(record.get("pid"))
    if pid is None:
        return False
    return not alive(pid, _as_int(record.get("proc_start")))
