"""The DebunkService RPCs: validate, read the pinned snapshot, run the pure pipeline, answer."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.reader import SnapshotReader
from ranking.pipeline import rank_feed
from service import validation
from service.cards import to_card
from service.snapshot_watcher import SnapshotWatcher

log = logging.getLogger("debunk.service")

# How long a request may wait for the store when the caller set no deadline.
DEFAULT_STORE_TIMEOUT_S = 0.25
# Time kept back from the caller's deadline to build and send the answer.
DEADLINE_MARGIN_S = 0.005


class DebunkServicer(pb_grpc.DebunkServiceServicer):
    """Serves cards from the snapshot the watcher pins; never fails a feed because Redis did."""

    def __init__(self, reader: SnapshotReader, watcher: SnapshotWatcher) -> None:
        self.reader = reader
        self.watcher = watcher

    def _store_timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return DEFAULT_STORE_TIMEOUT_S
        return max(0.0, min(DEFAULT_STORE_TIMEOUT_S, remaining - DEADLINE_MARGIN_S))

    async def RankFeed(
        self, request: pb.RankFeedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RankFeedResponse:
        try:
            user_id = validation.user_id(request.user_id)
            limit = validation.feed_limit(request.limit)
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = self.watcher.version
        if version is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no snapshot loaded yet")
        now = time.time()
        try:
            exposures, delivery, catalog = await asyncio.wait_for(
                self._read_user(version, user_id, now), timeout=self._store_timeout(context)
            )
        except (TimeoutError, redis.RedisError, OSError) as e:
            log.warning("RankFeed degraded: %s", type(e).__name__)
            return pb.RankFeedResponse(snapshot_version=version, degraded=True)
        ranked = rank_feed(exposures, catalog, now=now, limit=limit, delivery=delivery)
        return pb.RankFeedResponse(cards=[to_card(c) for c in ranked], snapshot_version=version)

    async def _read_user(self, version: str, user_id: str, now: float):  # noqa: ANN202
        catalog = await self.reader.catalog(version)
        exposures, delivery = await self.reader.user_view(version, user_id, surface="feed", now=now)
        return exposures, delivery, catalog

    async def _not_yet(self, context: grpc.aio.ServicerContext, rpc: str) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is declared in the contract but not served yet"
        )

    async def RankFeedBatch(self, request, context):  # noqa: ANN001, ANN201
        await self._not_yet(context, "RankFeedBatch")

    async def SearchTop(self, request, context):  # noqa: ANN001, ANN201
        await self._not_yet(context, "SearchTop")

    async def CommentTop(self, request, context):  # noqa: ANN001, ANN201
        await self._not_yet(context, "CommentTop")

    async def GroupWarnings(self, request, context):  # noqa: ANN001, ANN201
        await self._not_yet(context, "GroupWarnings")

    async def RecordEvents(self, request, context):  # noqa: ANN001, ANN201
        await self._not_yet(context, "RecordEvents")
