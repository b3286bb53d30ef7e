"""The matcher of each snapshot's rumor library, built off the request path before the service
adopts the snapshot, so SearchTop and GroupWarnings never wait for an index."""

from __future__ import annotations

import asyncio

from feature_store.reader import SnapshotReader
from matching import LibraryEntry, Matcher, Thresholds


class LibraryMatchers:
    """version -> Matcher over the snapshot's confirmed rumors (the newest two are kept)."""

    def __init__(self, reader: SnapshotReader, thresholds: Thresholds | None = None) -> None:
        self.reader = reader
        self.thresholds = thresholds or Thresholds()
        self._by_version: dict[str, Matcher] = {}

    async def prepare(self, version: str) -> None:
        """Build the matcher of ``version`` in a worker thread."""
        if version in self._by_version:
            return
        catalog = await self.reader.catalog(version)
        library = [
            LibraryEntry(r.rumor_id, r.claim, r.keywords, r.variants)
            for r in catalog.rumors.values()
            if r.confirmed
        ]
        matcher = await asyncio.to_thread(Matcher(self.thresholds).build, library)
        self._by_version[version] = matcher
        while len(self._by_version) > 2:
            self._by_version.pop(next(iter(self._by_version)))

    def get(self, version: str) -> Matcher | None:
        return self._by_version.get(version)
