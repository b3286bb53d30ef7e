"""The matcher of each snapshot's rumor library, built off the request path before the service
adopts the snapshot, so SearchTop and GroupWarnings never wait for an index."""

from __future__ import annotations

import asyncio

from domain.records import Catalog
from feature_store.reader import SnapshotReader
from matching import Matcher, Thresholds, matcher_library


class LibraryMatchers:
    """version -> Matcher over the snapshot's matcher library (``matching.matcher_library``, as
    offline tagging builds it); the newest two are kept."""

    def __init__(self, reader: SnapshotReader, thresholds: Thresholds | None = None) -> None:
        self.reader = reader
        self.thresholds = thresholds or Thresholds()
        self._by_version: dict[str, Matcher] = {}
        # version -> (library, matcher) over the live layer's effective catalog, when it differs
        self._live: dict[str, tuple[list, Matcher]] = {}

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

    async def prepare_live(self, version: str, catalog: Catalog) -> None:
        """Build the matcher of ``catalog`` (``version``'s effective catalog: the live layer
        over the snapshot) in a worker thread, unless its library is the snapshot's or the one
        already built."""
        library = matcher_library(catalog.rumors.values())
        built = self._live.get(version)
        if built is not None and built[0] == library:
            return
        snapshot = matcher_library((await self.reader.catalog(version)).rumors.values())
        if library == snapshot:
            self._live.pop(version, None)
            return
        matcher = await asyncio.to_thread(Matcher(self.thresholds).build, library)
        self._live[version] = (library, matcher)
        while len(self._live) > 2:
            self._live.pop(next(iter(self._live)))

    def get(self, version: str) -> Matcher | None:
        """The matcher of ``version``'s effective library (the live one once built, else the
        snapshot's), None before it is prepared."""
        live = self._live.get(version)
        return live[1] if live is not None else self._by_version.get(version)
