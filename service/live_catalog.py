"""The live catalog layer as the service sees it: the last layer loaded, the effective catalog
of the pinned version (snapshot merged with the layer, ``domain.live``), live item tags, and the
matcher over the effective library, rebuilt off the request path when rumor texts change."""

from __future__ import annotations

import asyncio
import logging

from domain.live import LiveLayer, effective_catalog, item_rumors
from domain.records import Catalog
from feature_store.live_catalog import load_layer
from feature_store.reader import SnapshotReader
from service.library import LibraryMatchers

log = logging.getLogger("debunk.service.live")


class LiveCatalog:
    """Holds the newest live layer and, per snapshot version, the effective catalog built from
    it (cached by version and layer seq, so a request pays one dict look-up)."""

    def __init__(self, reader: SnapshotReader, matchers: LibraryMatchers) -> None:
        self.reader = reader
        self.matchers = matchers
        self.layer = LiveLayer()
        self.seq = 0  # the seq of the layer loaded (0: no layer)
        self._effective: dict[str, tuple[int, Catalog, Catalog]] = {}
        self._rebuild: asyncio.Task[None] | None = None
        self._again = False

    async def adopt(self, version: str, seq: int) -> None:
        """A new snapshot ``version`` is about to be pinned: load the layer when ``seq`` moved,
        and build the matcher of its effective library when the layer changes rumors."""
        if seq != self.seq and await self.load(version):
            return
        if self.layer.rumors:
            self.rebuild_matcher(version, self.catalog(version, await self.reader.catalog(version)))

    async def load(self, version: str) -> bool:
        """Load the layer for ``version``; False (layer kept) when the pointer moved past
        ``version`` meanwhile: the nightly may have cleared entries it folded into the newer
        snapshot, which this version lacks; the watcher adopts that snapshot first."""
        layer, pointer = await load_layer(self.reader.transport)
        if pointer is not None and pointer != version:
            return False
        previous, self.layer, self.seq = self.layer, layer, layer.seq
        base = await self.reader.catalog(version)
        catalog = self.catalog(version, base)
        log.info("live layer loaded", extra={"seq": layer.seq, "version": version})
        if previous.rumors or layer.rumors:  # prepare_live skips an unchanged library
            self.rebuild_matcher(version, catalog)
        return True

    def catalog(self, version: str, base: Catalog) -> Catalog:
        """The effective catalog of ``version`` (``base``, its snapshot catalog, with the layer
        merged over it)."""
        hit = self._effective.get(version)
        if hit is not None and hit[0] == self.layer.seq and hit[1] is base:
            return hit[2]
        merged = effective_catalog(base, self.layer)
        self._effective[version] = (self.layer.seq, base, merged)
        while len(self._effective) > 2:
            self._effective.pop(next(iter(self._effective)))
        return merged

    def item_rumors(self, item_id: str, snapshot_ids: list[str]) -> list[str]:
        """The rumors ``item_id`` carries: the snapshot's with the live tag changes applied."""
        return item_rumors(snapshot_ids, self.layer.tags.get(item_id))

    def rebuild_matcher(self, version: str, catalog: Catalog) -> None:
        """Build the matcher of the effective library in the background (one build at a time;
        a change during a build starts one more after it). Until it is in, the previous index
        answers and its matches are filtered by the effective catalog, so a withdrawn rumor is
        never pinned."""
        if self._rebuild is not None and not self._rebuild.done():
            self._again = True
            return
        self._rebuild = asyncio.get_running_loop().create_task(self._build(version, catalog))

    async def _build(self, version: str, catalog: Catalog) -> None:
        """Build, then build again with the newest catalog while changes came in meanwhile."""
        while True:
            self._again = False
            try:
                await self.matchers.prepare_live(version, catalog)
            except Exception:  # a failed build keeps the previous index serving
                log.exception("live matcher build failed; the previous index serves")
            if not self._again:
                return
            base = self.reader.cached_catalog(version)
            if base is None:
                return
            catalog = self.catalog(version, base)

    async def stop(self) -> None:
        """Cancel a build in flight."""
        if self._rebuild is not None:
            self._rebuild.cancel()
