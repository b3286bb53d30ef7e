"""The DebunkService RPCs: validate, read the pinned snapshot, run the pure pipeline, answer."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import Delivery, DeliveryEvent
from domain.experiments import Arm, Experiment
from domain.models import UserModel
from domain.records import Catalog, ExposureState
from feature_store.delivery import queue_events
from feature_store.events import queue_append
from feature_store.reader import SnapshotReader
from ranking.pinned import Pinned, first_seen_first, pin_item_rumors, pin_matches
from ranking.pipeline import rank_feed
from service import validation
from service.cards import pinned_card, to_card
from service.experiments import ExperimentBook
from service.library import LibraryMatchers
from service.snapshot_watcher import SnapshotWatcher

log = logging.getLogger("debunk.service")

# How long a request may wait for the store at most (less when the caller's deadline is nearer).
DEFAULT_STORE_TIMEOUT_S = 0.25
BATCH_STORE_TIMEOUT_S = 2.0
# Time kept back from the caller's deadline to build and send the answer.
DEADLINE_MARGIN_S = 0.005
STORE_ERRORS = (TimeoutError, redis.RedisError, OSError)
T = TypeVar("T")


@dataclass(frozen=True)
class ServingPolicy:
    """Knobs of the serving policy that operators set."""

    feed_daily_cap: int = 5


class DebunkServicer(pb_grpc.DebunkServiceServicer):
    """Serves cards from the snapshot the watcher pins; never fails a feed because Redis did."""

    def __init__(
        self,
        reader: SnapshotReader,
        watcher: SnapshotWatcher,
        policy: ServingPolicy | None = None,
        matchers: LibraryMatchers | None = None,
        experiments: ExperimentBook | None = None,
    ) -> None:
        self.reader = reader
        self.watcher = watcher
        self.matchers = matchers or LibraryMatchers(reader)
        self.policy = policy or ServingPolicy()
        self.experiments = experiments or ExperimentBook(reader.client)

    def _store_timeout(self, context: grpc.aio.ServicerContext, limit: float) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return limit
        return max(0.0, min(limit, remaining - DEADLINE_MARGIN_S))

    async def _store(
        self,
        context: grpc.aio.ServicerContext,
        call: Awaitable[T],
        limit: float = DEFAULT_STORE_TIMEOUT_S,
    ) -> T:
        """Await a store call within the caller's deadline and at most ``limit`` seconds, in the
        calling task (a timeout scope, not wait_for's extra task): a read that needs no IO costs
        no trip around the event loop. A call whose time is already up is never started."""
        timeout = self._store_timeout(context, limit)
        if timeout <= 0:
            if asyncio.iscoroutine(call):
                call.close()
            raise TimeoutError
        async with asyncio.timeout(timeout):
            return await call

    async def _feed_view(
        self, context: grpc.aio.ServicerContext, version: str, user_id: str, now: float
    ) -> tuple[list[ExposureState], Delivery, UserModel | None]:
        """One user's feed view within the caller's deadline (at most the store timeout)."""
        timeout = self._store_timeout(context, DEFAULT_STORE_TIMEOUT_S)
        if timeout <= 0:
            raise TimeoutError
        # The reader keeps the deadline itself (no timer per call when the answer is in time).
        return await self.reader.feed_view(
            version, user_id, surface="feed", now=now, timeout=timeout
        )

    async def _catalog(self, context: grpc.aio.ServicerContext, version: str) -> Catalog:
        """The pinned version's catalog: from the process cache without awaiting the store."""
        cached = self.reader.cached_catalog(version)
        if cached is not None:
            return cached
        return await self._store(context, self.reader.catalog(version))

    async def _version(self, context: grpc.aio.ServicerContext) -> str:
        version = self.watcher.version
        if version is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no snapshot loaded yet")
        return version  # type: ignore[return-value]

    def _rank(
        self,
        into: Any,
        exposures: list[ExposureState],
        delivery: Delivery,
        catalog: Catalog,
        now: float,
        limit: int,
        arm: Arm | None = None,
        model: UserModel | None = None,
    ) -> None:
        """Rank one user's cards and write them into ``into`` (a reply's repeated cards)."""
        cap = self.policy.feed_daily_cap
        if arm is not None and arm.feed_daily_cap is not None:
            cap = arm.feed_daily_cap
        budget = min(limit, cap - delivery.served_today)
        if budget <= 0:
            return
        ranked = rank_feed(
            exposures, catalog, now=now, limit=budget, delivery=delivery, model=model
        )
        for c in ranked:
            to_card(c, into.add())

    async def RankFeed(
        self, request: pb.RankFeedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RankFeedResponse:
        try:
            user_id = validation.user_id(request.user_id)
            limit = validation.feed_limit(request.limit)
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = await self._version(context)
        now = time.time()
        exp, arm = self.experiments.assign(user_id, now)
        labels = _labels(exp, arm)
        if _is_holdout(arm):
            return pb.RankFeedResponse(snapshot_version=version, **labels)
        try:
            catalog = await self._catalog(context, version)
            exposures, delivery, model = await self._feed_view(context, version, user_id, now)
        except STORE_ERRORS as e:
            log.warning("RankFeed degraded: %s", type(e).__name__)
            return pb.RankFeedResponse(snapshot_version=version, degraded=True, **labels)
        reply = pb.RankFeedResponse(snapshot_version=version, **labels)
        self._rank(reply.cards, exposures, delivery, catalog, now, limit, arm, _model(arm, model))
        return reply

    async def RankFeedBatch(
        self, request: pb.RankFeedBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.RankFeedBatchResponse:
        try:
            user_ids = validation.batch_user_ids(list(request.user_ids))
            limit = validation.feed_limit(request.limit)
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = await self._version(context)
        now = time.time()
        exp, arms = self.experiments.assign_batch(user_ids, now)
        reply = pb.RankFeedBatchResponse(snapshot_version=version)
        feeds = [reply.feeds.add(user_id=u) for u in user_ids]
        if exp is not None:
            for feed, arm in zip(feeds, arms, strict=True):
                feed.experiment, feed.arm = exp.name, arm.name  # type: ignore[union-attr]
        targeted = [i for i, arm in enumerate(arms) if not _is_holdout(arm)]
        try:
            catalog = await self._catalog(context, version)
            timeout = self._store_timeout(context, BATCH_STORE_TIMEOUT_S)
            if timeout <= 0:
                raise TimeoutError
            views = await self.reader.feeds_view(
                version, [user_ids[i] for i in targeted], surface="feed", now=now, timeout=timeout
            )
        except STORE_ERRORS as e:
            log.warning("RankFeedBatch degraded: %s", type(e).__name__)
            reply.degraded = True
            return reply
        for i, (exposures, delivery, model) in zip(targeted, views, strict=True):
            arm = arms[i]
            model = _model(arm, model)
            self._rank(feeds[i].cards, exposures, delivery, catalog, now, limit, arm, model)
        return reply

    async def CommentTop(
        self, request: pb.CommentTopRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommentTopResponse:
        try:
            item_id = validation.some_id(request.item_id, "item_id")
            user_id = validation.user_id(request.user_id) if request.user_id else ""
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = await self._version(context)
        labels = self._viewer_labels(user_id)
        try:
            catalog = await self._catalog(context, version)
            rumor_ids = await self._store(context, self.reader.item_rumors(version, item_id))
        except STORE_ERRORS as e:
            log.warning("CommentTop degraded: %s", type(e).__name__)
            return pb.CommentTopResponse(snapshot_version=version, degraded=True, **labels)
        best = pin_item_rumors(rumor_ids, catalog)
        reply = pb.CommentTopResponse(snapshot_version=version, **labels)
        if best is not None:
            reply.card.CopyFrom(pinned_card(best, f"item {item_id} carries this rumor"))
        return reply

    async def SearchTop(
        self, request: pb.SearchTopRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchTopResponse:
        try:
            query = validation.query(request.query)
            user_id = validation.user_id(request.user_id) if request.user_id else ""
            limit = validation.pinned_limit(request.limit)
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = await self._version(context)
        labels = self._viewer_labels(user_id)
        matcher = self.matchers.get(version)
        try:
            catalog = await self._catalog(context, version)
        except STORE_ERRORS:
            return pb.SearchTopResponse(snapshot_version=version, degraded=True, **labels)
        if matcher is None:  # only before the first index is built
            return pb.SearchTopResponse(snapshot_version=version, degraded=True, **labels)
        pinned = pin_matches(matcher.match(query, k=limit + 2), catalog, matcher.thresholds.high)
        degraded = False
        if user_id and pinned:
            try:
                exposures = await self._store(context, self.reader.user_exposures(version, user_id))
                pinned = first_seen_first(pinned, exposures)
            except STORE_ERRORS:
                degraded = True  # unpersonalised, still correct
        cards = [pinned_card(p, f"the query matches this rumor ({p.score:.2f})") for p in pinned]
        return pb.SearchTopResponse(
            cards=cards[:limit], snapshot_version=version, degraded=degraded, **labels
        )

    async def GroupWarnings(
        self, request: pb.GroupWarningsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GroupWarningsResponse:
        try:
            messages, members = validation.group(request)
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        version = await self._version(context)
        matcher = self.matchers.get(version)
        degraded = False
        try:
            catalog = await self._catalog(context, version)
        except STORE_ERRORS:
            return pb.GroupWarningsResponse(snapshot_version=version, degraded=True)
        with_items = [m for m in messages if m.item_id]
        try:
            item_rumors = await self._store(
                context, self.reader.items_rumors(version, [m.item_id for m in with_items])
            )
        except STORE_ERRORS:
            item_rumors, degraded = [[] for _ in with_items], True
        found: dict[str, tuple[Pinned, str]] = {}
        for m, rumors in zip(with_items, item_rumors, strict=True):
            best = pin_item_rumors(rumors, catalog)
            if best is not None:
                found[m.message_id] = (best, "item")
        texts = [m for m in messages if m.message_id not in found and m.text]
        if texts and matcher is not None:
            for m, matches in zip(texts, matcher.match_batch([m.text for m in texts], k=3),
                                  strict=True):  # fmt: skip
                pinned = pin_matches(matches, catalog, matcher.thresholds.high)
                if pinned:
                    found[m.message_id] = (pinned[0], "text")
        rumor_ids = sorted({p.rumor.rumor_id for p, _ in found.values()})
        try:
            exposed = await self._store(
                context, self.reader.exposed_members(version, members, rumor_ids)
            )
        except STORE_ERRORS:
            exposed, degraded = {}, True
        warnings = [
            pb.GroupWarning(
                message_id=m.message_id,
                card=pinned_card(found[m.message_id][0], "this message carries a known rumor"),
                exposed_member_ids=exposed.get(found[m.message_id][0].rumor.rumor_id, []),
                matched_by=found[m.message_id][1],
                match_score=found[m.message_id][0].score,
            )
            for m in messages
            if m.message_id in found
        ]
        return pb.GroupWarningsResponse(
            warnings=warnings, snapshot_version=version, degraded=degraded
        )

    def _viewer_labels(self, user_id: str) -> dict[str, str]:
        """Experiment and arm of an optional viewer (pinned cards are not targeted, so every
        arm gets them; the labels let analysts attribute what each arm saw)."""
        return _labels(*self.experiments.assign(user_id, time.time())) if user_id else {}

    def _label_event(self, event: DeliveryEvent) -> DeliveryEvent:
        """Fill in the experiment and arm the user was in when the event happened."""
        if event.experiment:
            return event
        exp, arm = self.experiments.assign(event.user_id, event.ts)
        if exp is None or arm is None:
            return event
        return dataclasses.replace(event, experiment=exp.name, arm=arm.name)

    async def RecordEvents(
        self, request: pb.RecordEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordEventsResponse:
        version = self.watcher.version
        catalog = await self.reader.catalog(version) if version else None
        try:
            events = validation.events(list(request.events), catalog, now=time.time())
        except validation.BadRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        events = [self._label_event(e) for e in events]
        pipe = self.reader.client.pipeline(transaction=False)
        queue_events(pipe, events)
        queue_append(pipe, events)
        try:
            await self._store(context, pipe.execute())
        except STORE_ERRORS as e:
            # Unlike a feed, an event the caller thinks is stored must be: say it was not.
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"events not stored: {type(e).__name__}"
            )
        return pb.RecordEventsResponse(accepted=len(events))


def _labels(exp: Experiment | None, arm: Arm | None) -> dict[str, str]:
    """The experiment and arm fields of an answer (empty when no experiment runs)."""
    return {"experiment": exp.name, "arm": arm.name} if exp and arm else {}


def _is_holdout(arm: Arm | None) -> bool:
    return arm is not None and arm.policy == "holdout"


def _model(arm: Arm | None, model: UserModel | None) -> UserModel | None:
    """The learned ranker runs unless the user's arm runs the rules alone."""
    return None if arm is not None and arm.policy == "rules" else model
