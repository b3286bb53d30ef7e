"""The matcher of each snapshot's rumor library, built off the request path before the service
adopts the snapshot, so SearchTop and GroupWarnings never wait for an index."""

from __future__ import annotations

import asyncio

from feature_store.reader import SnapshotReader
from matching import Matcher, Thresholds, matcher_library


class LibraryMatchers:
    """version -> Matcher over the snapshot's matcher library (``matching.matcher_library``, as
    offline tagging builds it); the newest two are kept."""

    def __init__(self, reader: SnapshotReader, thresholds: Thresholds | None = None) -> None:
        self.reader = reader
        self.thresholds = thresholds or Thresholds()
        self._by_version: dict[str, Matcher] = {}

    async def prepare(self, version: str) -> None:
        """Build the matcher of ``version`` in a worker thread."""
        if version in self._by_version:
            return
        catalog = await self.reader.catalog(version)
        library = matcher_library(catalog.rumors.values())
        matcher = await asyncio.to_thread(Matcher(self.thresholds).build, library)
        self._by_version[version] = matcher
        while len(self._by_version) > 2:
            self._by_version.pop(next(iter(self._by_version)))

    def get(self, version: str) -> Matcher | None:
        """The matcher of ``version``, None before it is prepared."""
        return self._by_version.get(version)
