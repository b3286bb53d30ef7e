"""``debunk rumor show``: one rumor as operators need it: its effective record (snapshot with
the live layer over it), its history from the audit stream, its live tags, its debunks, and its
audience so far from the nightly's state (exposed users, sharers, the earliest sharers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store.live_catalog import audit_entries
from feature_store.live_changes import LiveEditor

AUDIENCE_COLUMNS = ("exposed_users", "sharers", "exposures", "first_exposed_at",
                    "first_shared_at", "earliest_sharers")  # fmt: skip


def rumor_show(editor: LiveEditor, rumor_id: str, state_dir: Path | None) -> dict[str, Any]:
    """Everything known about ``rumor_id`` (which the editor's catalog holds)."""
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
