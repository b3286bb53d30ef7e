"""The operators' changes to the live catalog layer, checked against the effective catalog (the
current snapshot with the layer over it) and applied in one script each: rumors added,
confirmed, withdrawn and updated, item tags added and removed, debunks imported.

Every command validates all of its input before it writes anything, and is idempotent: a
change that would leave the effective catalog as it is is left out, and a command left with
nothing to change writes nothing (no seq bump, no audit entry) and reports ``changed: 0``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from domain.ids import check_id
from domain.live import TagChange, effective_catalog, item_rumors, updated_rumor, with_status
from domain.records import Catalog, Debunk, Rumor
from domain.rows import RecordError
from domain.vocab import RUMOR_STATUSES
from feature_store import live_catalog as store
from feature_store.live_catalog import Change, LayerRead, encode

TAG_SOURCES = ("manual", "matched")


class LiveError(ValueError):
    """A change the operator asked for that cannot be made (an unknown id, a bad value): the
    message says which; nothing was applied."""


@dataclass
class Outcome:
    """What a command did: how many entries changed, the layer's seq after it, and the ids."""

    changed: int = 0
    seq: int = 0
    ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """What the command prints."""
        return {"changed": self.changed, "seq": self.seq, "ids": self.ids}


class LiveEditor:
    """One operator's view of the live layer: read once, then one command applied at once."""

    def __init__(
        self, client: redis.Redis, actor: str, base: Callable[[], Catalog | None] | None = None
    ) -> None:
        self.client = client
        self.actor = check_id(actor, "actor")
        self.read: LayerRead = store.read_layer(client)
        self.version, snapshot = store.snapshot_catalog(client)
        # Without a snapshot yet, the caller's library files (``base``: --data) are the base.
        files = base() if self.version is None and base is not None else None
        self.base = files if files is not None else snapshot
        self.catalog = effective_catalog(self.base, self.read.layer)
        self.now = int(time.time())

    def _rumor(self, rumor_id: str) -> Rumor:
        """The effective rumor ``rumor_id``; LiveError when no rumor has that id."""
        rumor = self.catalog.rumors.get(check_id(rumor_id, "rumor_id"))
        if rumor is None:
            raise LiveError(f"no rumor {rumor_id!r} in the snapshot or the live layer")
        return rumor

    def _change(self, kind: str, ident: str, record: Any, before: Any) -> Change:
        """A Change setting the layer's entry (kind, ident) to ``record``."""
        old = before.to_dict() if before is not None else None
        expected = self.read.raw.get((kind, ident))
        return Change(kind, ident, expected, encode(record), old, record.to_dict())

    def _apply(self, command: str, changes: list[Change], note: str = "") -> Outcome:
        """Apply what changes anything; nothing at all when nothing does."""
        if not changes:
            return Outcome(0, self.read.layer.seq, [])
        seq = store.apply(self.client, changes, actor=self.actor, command=command, note=note)
        return Outcome(len(changes), seq, [c.id for c in changes])

    def add_rumors(self, rumors: list[Rumor]) -> Outcome:
        """New rumors (parsed rows); one already known with other content is refused (use
        ``update``), one known with the same content is left out."""
        changes, seen = [], set()
        for r in rumors:
            if r.rumor_id in seen:
                raise LiveError(f"rumor {r.rumor_id!r} is twice in the file")
            seen.add(r.rumor_id)
            known = self.catalog.rumors.get(r.rumor_id)
            if known is not None and _comparable(known) != _comparable(r):
                raise LiveError(f"rumor {r.rumor_id!r} exists with other content: use update")
            if known is None:
                changes.append(self._change("rumor", r.rumor_id, r, None))
        return self._apply("rumor add", changes)

    def set_status(self, rumor_id: str, status: str, reason: str = "") -> Outcome:
        """Confirm or withdraw a rumor (``reason`` goes to the audit entry)."""
        if status not in RUMOR_STATUSES:
            raise LiveError(f"status must be one of {', '.join(RUMOR_STATUSES)}")
        rumor = self._rumor(rumor_id)
        now_iso = datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        new = with_status(rumor, status, now_iso)
        verb = "confirm" if status == "confirmed" else "withdraw"
        changes = (
            [] if new.status == rumor.status else [self._change("rumor", rumor_id, new, rumor)]
        )
        return self._apply(f"rumor {verb}", changes, reason)

    def update_rumor(self, rumor_id: str, fields: dict[str, Any]) -> Outcome:
        """Set fields of a rumor (``domain.live.UPDATABLE``); a new verdict revises its card."""
        if not fields:
            raise LiveError("rumor update needs at least one field to set")
        rumor = self._rumor(rumor_id)
        try:
            new = updated_rumor(rumor, fields, self.now)
        except RecordError as e:
            raise LiveError(f"rumor {rumor_id}: {e}") from None
        changes = [] if new == rumor else [self._change("rumor", rumor_id, new, rumor)]
        return self._apply("rumor update", changes)

    def _tags(self, item_id: str) -> tuple[TagChange, list[str]]:
        """The item's live tag change and its effective rumors."""
        change = self.read.layer.tags.get(check_id(item_id, "item_id"))
        snapshot = store.snapshot_item_rumors(self.client, self.version, item_id)
        return change or TagChange(), item_rumors(snapshot, change)

    def tag(
        self, item_id: str, rumor_id: str, source: str = "manual", score: float = 1.0
    ) -> Outcome:
        """Tag ``item_id`` with ``rumor_id`` (CommentTop and GroupWarnings pin it at once)."""
        return self.tag_all([(item_id, rumor_id, source, score)])

    def tag_all(
        self, tags: list[tuple[str, str, str, float]], command: str = "tag add", note: str = ""
    ) -> Outcome:
        """Put every (item_id, rumor_id, source, score) tag on at once (one script, one audit
        entry per item changed), leaving out those the item already carries."""
        after: dict[str, TagChange] = {}
        before: dict[str, tuple[TagChange, list[str]]] = {}
        for item_id, rumor_id, source, score in tags:
            if source not in TAG_SOURCES:
                raise LiveError(f"source must be one of {', '.join(TAG_SOURCES)}")
            self._rumor(rumor_id)
            if item_id not in before:
                before[item_id] = self._tags(item_id)
            change, current = before[item_id]
            if rumor_id not in current and rumor_id not in after.get(item_id, change).added:
                after[item_id] = after.get(item_id, change).tag(rumor_id, source, score)
        changes = [self._tag_change(i, before[i][0], a) for i, a in after.items()]
        return self._apply(command, changes, note)

    def untag(self, item_id: str, rumor_id: str) -> Outcome:
        """Take ``rumor_id`` off ``item_id`` (also a tag of the nightly's input files)."""
        self._rumor(rumor_id)
        change, _ = self._tags(item_id)
        if rumor_id in change.removed:
            return self._apply("tag remove", [])
        return self._apply(
            "tag remove", [self._tag_change(item_id, change, change.untag(rumor_id))]
        )

    def _tag_change(self, item_id: str, before: TagChange, after: TagChange) -> Change:
        """A Change setting the item's live tag change from ``before`` to ``after``."""
        return Change("tag", item_id, self.read.raw.get(("tag", item_id)), encode(after),
                      before.to_dict(), after.to_dict())  # fmt: skip

    def import_debunks(self, debunks: list[Debunk]) -> Outcome:
        """New or changed debunks (parsed by the caller); every rumor they name must be known.
        A rumor that gets a new or changed debunk is revised: its card is re-pushed."""
        changes, revised, seen = [], set(), set()
        for d in debunks:
            check_id(d.debunk_id, "debunk_id")
            if d.debunk_id in seen:
                raise LiveError(f"debunk {d.debunk_id!r} is twice in the file")
            seen.add(d.debunk_id)
            if not d.rumor_ids:
                raise LiveError(f"debunk {d.debunk_id!r} names no rumor")
            for r in d.rumor_ids:
                self._rumor(r)
            known = self.catalog.debunks.get(d.debunk_id)
            if known != d:
                changes.append(self._change("debunk", d.debunk_id, d, known))
                revised |= set(d.rumor_ids)
        for r in sorted(revised):
            rumor = self.catalog.rumors[r]
            if self.catalog.debunks_by_rumor.get(r):  # users may hold one of its old cards
                new = Rumor.from_dict({**rumor.to_dict(), "revised_at": self.now})
                changes.append(self._change("rumor", r, new, rumor))
        return self._apply("debunks import", changes)


def _comparable(rumor: Rumor) -> dict[str, Any]:
    """A rumor's content as an operator's file states it (without what the nightly derives)."""
    d = rumor.to_dict()
    for derived in ("cluster", "revised_at"):
        d.pop(derived)
    return d
