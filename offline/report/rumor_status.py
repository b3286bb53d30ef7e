"""``debunk rumor show``: one rumor as operators need it: its effective record (snapshot with
the live layer over it), its history from the audit stream, its live tags, its debunks, and its
audience so far from the nightly's state (exposed users, sharers, the earliest sharers) and who
its debunks reached (exported events and the stream's unexported tail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store import events
from feature_store.live_catalog import audit_entries
from feature_store.live_changes import LiveEditor
from offline.models.features import read_events

SEEN = ("impression", "click", "share")  # a debunk event that means the user saw it
TAIL = 1_000_000  # the most unexported stream entries read

AUDIENCE_COLUMNS = ("exposed_users", "sharers", "exposures", "first_exposed_at",
                    "first_shared_at", "earliest_sharers")  # fmt: skip


def rumor_show(
    editor: LiveEditor, rumor_id: str, state_dir: Path | None, data: Path | None = None
) -> dict[str, Any]:
    """Everything known about ``rumor_id`` (which the editor's catalog holds); ``data``: the
    folder whose ``debunk_events/`` holds the exported events."""
    catalog = editor.catalog
    rumor = catalog.rumors[rumor_id]
    layer = editor.read.layer
    return {
        "rumor": rumor.to_dict(),
        "live": rumor_id in layer.rumors,
        "snapshot": editor.version,
        "history": [
            {k: e[k] for k in ("ts", "actor", "command", "before", "after", "note", "seq")}
            for e in audit_entries(editor.client, rumor_id)
        ],
        "live_tags": {
            "added": sorted(i for i, c in layer.tags.items() if rumor_id in c.added),
            "removed": sorted(i for i, c in layer.tags.items() if rumor_id in c.removed),
        },
        "debunks": [d.to_dict() for d in catalog.debunks_by_rumor.get(rumor_id, [])],
        "audience": audience(state_dir, rumor_id),
        "reached": reached(editor.client, rumor_id, state_dir, data),
    }


def audience(state_dir: Path | None, rumor_id: str) -> dict[str, Any] | None:
    """The rumor's row of the last nightly's audience table (None without one)."""
    if state_dir is None:
        return None
    path = state_dir / "current" / "audience.parquet"
    if not path.exists():
        return None
    table = pq.read_table(path)
    rows = table.filter(pc.equal(table["rumor_id"], rumor_id)).to_pylist()
    if not rows:
        return {"exposed_users": 0, "sharers": 0}
    return {k: rows[0][k] for k in AUDIENCE_COLUMNS if k in rows[0]}


def reached(client, rumor_id: str, state_dir: Path | None, data: Path | None) -> dict[str, int]:
    """Users who saw one of the rumor's debunks (an impression, click or share), from the
    exported events of ``data`` and the event stream's unexported tail, and how many of them
    the last nightly's state counts as exposed to it."""
    users: set[str] = set()
    if data is not None:
        table = read_events(Path(data) / "debunk_events")
        mine = pc.and_(pc.equal(table["rumor_id"], rumor_id),
                       pc.is_in(table["event"], value_set=pa.array(SEEN)))  # fmt: skip
        users.update(table.filter(mine)["user_id"].to_pylist())
    for _, e in events.read_after(client, events.exported_cursor(client), TAIL):
        if e.get("rumor_id") == rumor_id and e.get("event") in SEEN:
            users.add(e["user_id"])
    exposed = _exposed(state_dir, rumor_id)
    return {"users": len(users), "exposed_users": len(users & exposed)}


def _exposed(state_dir: Path | None, rumor_id: str) -> set[str]:
    """The users the last nightly's state counts as exposed to ``rumor_id``."""
    path = None if state_dir is None else state_dir / "current" / "exposures.parquet"
    if path is None or not path.exists():
        return set()
    t = pq.read_table(path, columns=["user_id"], filters=[("rumor_id", "=", rumor_id)])
    return set(t["user_id"].to_pylist())
