"""A bounded in-process copy of the snapshot's own per-user rows (the exposure hash and the
model side, decoded), so a repeat feed read asks Redis only for what changes: delivery state,
today's cap and the live layers.

A snapshot version's rows are written before its pointer flip and never again (its keys carry
the version), so an entry is right for as long as its version is; only the versions the reader
keeps a catalog of are kept here, and a flip to a new version starts from nothing. The reader
uses it only while the caller trusts the store (``SnapshotReader.feeds_view``'s ``trusted``):
rows read from a Redis that lost the snapshot are never kept."""

from __future__ import annotations

import os
from collections import OrderedDict

from domain.models import UserModel
from domain.records import ExposureState

# Users kept per process (a user's rows are ~27 exposure states and their factors: a few KB).
DEFAULT_USERS = 20_000
Rows = tuple[list[ExposureState], UserModel]
# What is kept of a user: their exposure states and model side as plain tuples of atomic values.
# The collector stops tracking plain tuples like these at its first pass (it never untracks
# named tuples): 20,000 users' rows kept as ExposureStates were ~540,000 tracked objects, and
# each full pass walked them (passes of 100-200 ms in one process while the rows filled).
Packed = tuple[tuple[tuple, ...], tuple]
_new = tuple.__new__


def configured_users() -> int:
    """``DEBUNK_ROW_CACHE_USERS`` (0 turns the cache off), else DEFAULT_USERS."""
    return int(os.environ.get("DEBUNK_ROW_CACHE_USERS", DEFAULT_USERS))


class SnapshotRows:
    """Decoded snapshot rows by (version, user), at most ``users`` of them, the oldest entry
    dropped first; at most ``versions`` versions (the newest put)."""

    def __init__(self, users: int = DEFAULT_USERS, versions: int = 2) -> None:
        self.users = users
        self.versions = versions
        # Per version in insertion order; an OrderedDict drops its oldest in O(1), where a dict's
        # first key is found by walking past every slot deleted before it (at 20,000 users
        # cycled through, ~7.6 us a put instead of ~0.5: decision 0077).
        self._by_version: dict[str, OrderedDict[str, Packed]] = {}
        self._size = 0
        self.hits = 0
        self.misses = 0

    def get(self, version: str, user_id: str, plain: bool = False) -> Rows | None:
        """The rows kept for ``user_id`` in ``version``, or None; with ``plain``, the exposure
        states as the kept plain tuples (ExposureState's fields by position: nothing new for
        the collector to track, where named ones are ~27 tracked objects a user)."""
        rows = self._by_version.get(version)
        hit = rows.get(user_id) if rows is not None else None
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        states, model = hit
        if plain:
            return list(states), _new(UserModel, model)  # type: ignore[arg-type]
        return [_new(ExposureState, s) for s in states], _new(UserModel, model)

    def put(self, version: str, user_id: str, rows: Rows) -> None:
        """Keep ``rows`` (decoded from the store's reply for ``version``) for ``user_id``."""
        if self.users <= 0:
            return
        kept = self._by_version.get(version)
        if kept is None:
            kept = self._by_version[version] = OrderedDict()
            while len(self._by_version) > self.versions:
                self._size -= len(self._by_version.pop(next(iter(self._by_version))))
        if user_id not in kept:
            while self._size >= self.users:
                self._evict_one()
            self._size += 1
        states, model = rows
        kept[user_id] = (tuple([tuple(s) for s in states]), tuple(model))

    def _evict_one(self) -> None:
        """Drop the oldest entry of the oldest version holding any."""
        for version, kept in self._by_version.items():
            if kept:
                kept.popitem(last=False)
                self._size -= 1
                return
            del self._by_version[version]
            return

    def __len__(self) -> int:
        return self._size
