"""The DebunkService RPCs: each reads the pinned snapshot, runs the pure pipeline, answers.

The opening every RPC shares and the degraded answer are ``service.rpc``'s; the daily cap and
the arm rules are ``ranking.policy``'s. What is left here is IO."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from typing import Any

import grpc

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import Delivery, DeliveryEvent
from domain.experiments import Arm, Experiment
from domain.models import UserModel
from domain.records import Catalog, ExposureState
from feature_store.event_writes import EventWriter
from feature_store.reader import SnapshotReader
from matching import Match, Matcher
from ranking.fused import rank_feed_fused
from ranking.pinned import (
    MATCH_DEPTH,
    Pinned,
    claim_rumor_count,
    claim_rumor_ids,
    exposed_to_claim,
    first_seen_first,
    pin_item_rumors,
    pin_matches,
)
from ranking.policy import FeedRules, ServingPolicy, feed_rules
from service import validation
from service.batch_reply import BatchReply
from service.cards import FEED_CARDS, USER_FEED_CARDS, feed_cards_wire, pinned_card
from service.experiments import ExperimentBook
from service.ingest import ExposureIntake
from service.library import LibraryMatchers
from service.live_catalog import LiveCatalog
from service.membership import Membership
from service.offload import OFFLOAD_CHARS, OFFLOAD_USERS, CpuPool
from service.rpc import STORE_ERRORS, Call, rpc, valid, within_deadline
from service.snapshot_watcher import SnapshotWatcher
from service.writes import store_events

BATCH_STORE_TIMEOUT_S = 2.0
# Users per store read of a batch (decoding 100 users' views holds the loop for ~1 ms).
FEED_READ_SLICE = 100
# Up to this many claim rumors, GroupWarnings asks each member's exposures for just those
# (HMGET); beyond, for all of them (HKEYS: a user saw ~20 rumors, a big claim cluster has
# thousands, and the answer is the same).
FEW_CLAIM_RUMORS = 32
# Prebuilt replies and feed rules kept (per version, experiment, arm): a few per snapshot.
MAX_KEPT_REPLIES = 256


def _long_messages(request: pb.GroupWarningsRequest) -> bool:
    """Whether a GroupWarnings request is big enough to validate off the loop."""
    return sum(len(m.text) for m in request.messages) > OFFLOAD_CHARS


class DebunkServicer(pb_grpc.DebunkServiceServicer):
    """Serves cards from the snapshot the watcher pins; never fails a feed because Redis did."""

    def __init__(
        self,
        reader: SnapshotReader,
        watcher: SnapshotWatcher,
        policy: ServingPolicy,
        matchers: LibraryMatchers,
        experiments: ExperimentBook,
        cpu: CpuPool | None = None,
        live: LiveCatalog | None = None,
        membership: Membership | None = None,
    ) -> None:
        self.reader = reader
        self.watcher = watcher
        self.policy = policy
        self.matchers = matchers
        self.experiments = experiments
        self.cpu = cpu or CpuPool()
        self.live = live  # the live catalog layer merged over the pinned snapshot
        self.membership = membership  # None: every feed user is read from the store
        self.events = EventWriter(reader.client)
        stored = membership.add if membership is not None else None
        self.intake = ExposureIntake(reader.client, self.cpu, on_stored=stored)
        self._rules: dict[int, tuple[Arm | None, FeedRules]] = {}
        self._unread_replies: dict[tuple[Any, ...], pb.RankFeedResponse] = {}

    def _answer_unread(self, call: Call[Any]) -> None:
        """Mark an answer given for non-members without a store read as Redis would have
        marked it: it rests on the store's state (degraded while the watcher distrusts the
        pinned snapshot), and degraded when the announced users are stale (Redis not
        answering: a read would have failed)."""
        call.read_store = True
        if self.membership is not None and self.membership.stale():
            call.degraded = True

    async def _feed_view(
        self, call: Call[Any], user_id: str
    ) -> tuple[list[ExposureState], Delivery, UserModel | None]:
        """One user's feed view within the caller's deadline (at most the store timeout); a kept
        user's exposure states as plain tuples (``feeds_view``'s ``plain``: ranking reads them
        by position)."""
        timeout = call.time_left()  # TimeoutError when no time is left: nothing is sent
        version, now = call.version, call.now
        # The reader keeps the deadline itself (no timer per call when the answer is in time).
        return await self.reader.feed_view(
            version, user_id, surface="feed", now=now, timeout=timeout, trusted=self._trusted,
            live_rows=self._live_rows(version), plain=True,
        )  # fmt: skip

    def _live_rows(self, version: str) -> Any:
        """Who may have live rows in ``version`` (``Membership.live_rows``), or None: read
        every user's live keys (no membership, or it cannot vouch)."""
        return None if self.membership is None else self.membership.live_rows(version)

    async def _catalog(self, call: Call[Any]) -> Catalog:
        """The pinned version's effective catalog (the live layer over the snapshot's): from
        the process cache without awaiting the store."""
        cached = self.reader.cached_catalog(call.version)
        if cached is None:
            cached = await call.store(self.reader.catalog(call.version))
        return cached if self.live is None else self.live.catalog(call.version, cached)

    def _trusted(self) -> bool:
        """Whether the store still holds the pinned snapshot (the reader keeps users' snapshot
        rows only while it does)."""
        return self.watcher.trusted

    def _live_items(self, item_ids: list[str], rumors: list[list[str]]) -> list[list[str]]:
        """Each item's snapshot rumors with the live layer's tag changes applied."""
        if self.live is None or not self.live.layer.tags:
            return rumors
        return [self.live.item_rumors(i, r) for i, r in zip(item_ids, rumors, strict=True)]

    def _ranked_wire(
        self,
        tag: bytes,
        rules: FeedRules,
        view: tuple[list[ExposureState], Delivery, UserModel | None],
        catalog: Catalog,
        now: float,
        limit: int,
    ) -> bytes:
        """One user's cards under their feed rules as the wire bytes of a repeated cards field
        ``tag`` (a reply's, or a batch's user feed's; empty for none): the fused pass
        (ranking.fused, service.cards: the reference pipeline's answer)."""
        exposures, delivery, model = view
        budget = rules.budget(limit, delivery.served_today)
        if budget <= 0:
            return b""
        model = model if rules.learned_ranker else None
        ranked = rank_feed_fused(
            exposures, catalog, now=now, limit=budget, delivery=delivery, model=model
        )
        return feed_cards_wire(ranked, tag) if ranked else b""

    def _rules_of(self, arm: Arm | None) -> FeedRules:
        """``feed_rules`` of ``arm``, built once per arm object (the experiment book keeps its
        arms until a refresh replaces them)."""
        hit = self._rules.get(id(arm))
        if hit is None or hit[0] is not arm:
            if len(self._rules) >= MAX_KEPT_REPLIES:
                self._rules.clear()
            hit = self._rules[id(arm)] = (arm, feed_rules(self.policy, arm))
        return hit[1]

    def _feed_unread(
        self, args: validation.FeedRequest, version: str
    ) -> pb.RankFeedResponse | tuple[Experiment | None, Arm | None]:
        """A RankFeed answered without a store read: a holdout arm's (labels only) and a
        non-member's (labels, and degraded as ``_answer_unread`` marks it: rank_feed's empty
        answer rests on the store); else the user's (experiment, arm), a targeted member's, for
        the method. Each such reply is built once per (version, experiment, arm, degraded) and
        reused: nothing writes to a reply once it is returned."""
        user_id = args.user_id
        exp, arm = self.experiments.assign(user_id, time.time())
        degraded = False
        if self._rules_of(arm).targeted:
            if self.membership is None or self.membership.member(version, user_id):
                return exp, arm
            degraded = self.membership.stale() or not self.watcher.trusted
        key = (version, exp and exp.name, arm and arm.name, degraded)
        reply = self._unread_replies.get(key)
        if reply is None:
            if len(self._unread_replies) >= MAX_KEPT_REPLIES:
                self._unread_replies.clear()
            reply = pb.RankFeedResponse(snapshot_version=version, degraded=degraded)
            _label(reply, exp, arm)
            self._unread_replies[key] = reply
        return reply

    @rpc(validation.feed_request, pb.RankFeedResponse, unread=_feed_unread)
    async def RankFeed(
        self, call: Call[validation.FeedRequest], reply: pb.RankFeedResponse
    ) -> None:
        user_id, limit = call.args
        exp, arm = call.early  # a targeted member's (``_feed_unread`` answered everyone else)
        _label(reply, exp, arm)
        rules = self._rules_of(arm)
        catalog = await self._catalog(call)
        view = await self._feed_view(call, user_id)
        cards = self._ranked_wire(FEED_CARDS, rules, view, catalog, call.now, limit)
        if cards:  # upb parses them, so the reply's bytes are the reference's
            reply.MergeFromString(cards)

    @rpc(validation.batch_request, BatchReply)
    async def RankFeedBatch(self, call: Call[validation.BatchRequest], reply: BatchReply) -> None:
        """Each user's feed, labelled; the answer is kept as its parts and written to the wire
        in one pass (``service.batch_reply``): a non-member's feed costs no message."""
        user_ids, limit = call.args
        exp, arms = self.experiments.assign_batch(user_ids, call.now)
        reply.open(user_ids, exp, arms)
        rules_of = {arm: self._rules_of(arm) for arm in set(arms)}
        targeted = [i for i, arm in enumerate(arms) if rules_of[arm].targeted]
        if self.membership is not None and targeted:
            member = self.membership.members_of(call.version, [user_ids[i] for i in targeted])
            if not all(member):  # non-members' feeds stay empty, unread
                self._answer_unread(call)
                targeted = [i for i, m in zip(targeted, member, strict=True) if m]
                if not targeted:
                    return
        catalog = await self._catalog(call)
        views = await self._feeds_view(call, [user_ids[i] for i in targeted])
        rank = functools.partial(self._rank_users, reply.cards, targeted, arms, rules_of, views,
                                 catalog, call.now, limit)  # fmt: skip
        if len(targeted) > OFFLOAD_USERS:
            await self.cpu.run(rank)  # off the loop: a 1,000-user batch is milliseconds of CPU
        else:
            rank()

    async def _feeds_view(
        self, call: Call[Any], user_ids: list[str]
    ) -> list[tuple[list[ExposureState], Delivery, UserModel | None]]:
        """The feed views of a batch's users, read in slices of ``FEED_READ_SLICE`` that go out
        in the same loop turn (so still one pipelined round trip) and are decoded in separate
        loop callbacks: other calls' callbacks run in between, never behind a 1,000-user
        decode."""
        timeout = call.time_left(BATCH_STORE_TIMEOUT_S)
        live_rows = self._live_rows(call.version)
        reads = [
            self.reader.feeds_view(
                call.version, user_ids[lo : lo + FEED_READ_SLICE], surface="feed", now=call.now,
                timeout=timeout, trusted=self._trusted, live_rows=live_rows, plain=True,
            )
            for lo in range(0, len(user_ids), FEED_READ_SLICE)
        ]  # fmt: skip
        if len(reads) == 1:
            return await reads[0]
        return [view for views in await asyncio.gather(*reads) for view in views]

    def _may_be_exposed(self, call: Call[Any], user_ids: list[str]) -> list[bool]:
        """Which of ``user_ids`` the store must be asked about (``membership``: a non-member
        has no exposure row, so its answer is known unread); when it skips anyone, the answer
        is marked as RankFeed's is for a non-member (``_answer_unread``)."""
        if self.membership is None or not user_ids:
            return [True] * len(user_ids)
        member = self.membership.members_of(call.version, user_ids)
        if not all(member):
            self._answer_unread(call)
        return member

    async def _exposed_rumors(
        self, call: Call[Any], members: list[str], pinned: list[Pinned], catalog: Catalog
    ) -> list[set[str]]:
        """The rumor ids each member is exposed to, at least those of ``pinned``'s claims: only
        those asked for when they are few, else all of each member's (``reader.exposed_rumors``);
        only members the member filter passes are read (the others saw nothing), in slices of
        ``FEED_READ_SLICE`` (one round trip, encoded and decoded in separate loop callbacks, as
        ``_feeds_view``)."""
        if not pinned:
            return [set() for _ in members]
        version, now = call.version, call.now
        few = claim_rumor_count(pinned, catalog) <= FEW_CLAIM_RUMORS
        among = claim_rumor_ids(pinned, catalog) if few else None
        asked = [i for i, m in enumerate(self._may_be_exposed(call, members)) if m]
        read = [members[i] for i in asked]
        slices = [read[lo : lo + FEED_READ_SLICE] for lo in range(0, len(read), FEED_READ_SLICE)]
        if len(slices) <= 1:
            found = await self.reader.exposed_rumors(version, read, among, now)
        else:
            parts = await asyncio.gather(
                *(self.reader.exposed_rumors(version, part, among, now) for part in slices)
            )
            found = [seen for part in parts for seen in part]
        exposed: list[set[str]] = [set() for _ in members]
        for i, seen in zip(asked, found, strict=True):
            exposed[i] = seen
        return exposed

    def _rank_users(
        self,
        cards: list[bytes | None],
        targeted: list[int],
        arms: list[Arm | None],
        rules_of: dict[Arm | None, FeedRules],
        views: list[tuple[list[ExposureState], Delivery, UserModel | None]],
        catalog: Catalog,
        now: float,
        limit: int,
    ) -> None:
        """Rank each targeted user of a batch: their cards' wire bytes into ``cards``."""
        rank = self._ranked_wire
        for i, view in zip(targeted, views, strict=True):
            cards[i] = rank(USER_FEED_CARDS, rules_of[arms[i]], view, catalog, now, limit) or None

    async def _match(self, matcher: Matcher, texts: list[str], k: int) -> list[list[Match]]:
        """``matcher.match_batch``: on the CPU pool when the texts are long, else inline."""
        if sum(map(len, texts)) > OFFLOAD_CHARS:
            return await self.cpu.run(matcher.match_batch, texts, k)
        return matcher.match_batch(texts, k=k)

    @rpc(validation.comment_request, pb.CommentTopResponse)
    async def CommentTop(
        self, call: Call[validation.CommentRequest], reply: pb.CommentTopResponse
    ) -> None:
        item_id, user_id = call.args
        self._label_viewer(reply, user_id, call.now)
        catalog = await self._catalog(call)
        rumor_ids = await call.store(self.reader.item_rumors(call.version, item_id))
        (rumor_ids,) = self._live_items([item_id], [rumor_ids])
        best = pin_item_rumors(rumor_ids, catalog)
        if best is not None:
            reply.card.CopyFrom(pinned_card(best, f"item {item_id} carries this rumor"))

    @rpc(validation.search_request, pb.SearchTopResponse)
    async def SearchTop(
        self, call: Call[validation.SearchRequest], reply: pb.SearchTopResponse
    ) -> None:
        query, user_id, limit = call.args
        self._label_viewer(reply, user_id, call.now)
        matcher = self.matchers.get(call.version)
        catalog = await self._catalog(call)
        if matcher is None:  # only before the first index is built
            call.degraded = True
            return
        (matches,) = await self._match(matcher, [query], MATCH_DEPTH)
        pinned = pin_matches(matches, catalog, matcher.thresholds.search)
        # Unpersonalised (still correct) when the exposures do not come; a viewer outside the
        # member filter has none, and the pinned order is already first_seen_first's.
        if user_id and pinned and self._may_be_exposed(call, [user_id])[0]:
            exposures = await call.store_or(self.reader.user_exposures(call.version, user_id), None)
            if exposures is not None:
                pinned = first_seen_first(pinned, exposures, catalog)
        reply.cards.extend(
            pinned_card(p, f"the query matches this rumor ({p.score:.2f})") for p in pinned[:limit]
        )

    @rpc(validation.group_request, pb.GroupWarningsResponse, heavy=_long_messages)
    async def GroupWarnings(
        self, call: Call[validation.GroupRequest], reply: pb.GroupWarningsResponse
    ) -> None:
        messages, members = call.args
        version = call.version
        matcher = self.matchers.get(version)
        catalog = await self._catalog(call)
        with_items = [m for m in messages if m.item_id]
        item_rumors = await call.store_or(
            self.reader.items_rumors(version, [m.item_id for m in with_items]),
            [[] for _ in with_items],
        )
        item_rumors = self._live_items([m.item_id for m in with_items], item_rumors)
        found: dict[str, tuple[Pinned, str]] = {}
        for m, rumors in zip(with_items, item_rumors, strict=True):
            best = pin_item_rumors(rumors, catalog)
            if best is not None:
                found[m.message_id] = (best, "item")
        texts = [m for m in messages if m.message_id not in found and m.text]
        if texts and matcher is not None:
            found_texts = await self._match(matcher, [m.text for m in texts], MATCH_DEPTH)
            for m, matches in zip(texts, found_texts, strict=True):
                pins = pin_matches(matches, catalog, matcher.thresholds.high)
                if pins:
                    found[m.message_id] = (pins[0], "text")
        pinned = [p for p, _ in found.values()]
        exposed = await call.store_or(
            self._exposed_rumors(call, members, pinned, catalog),
            [set() for _ in members],
        )
        reply.warnings.extend(
            pb.GroupWarning(
                message_id=m.message_id,
                card=pinned_card(found[m.message_id][0], "this message carries a known rumor"),
                exposed_member_ids=exposed_to_claim(
                    found[m.message_id][0], exposed, members, catalog
                ),
                matched_by=found[m.message_id][1],
                match_score=found[m.message_id][0].score,
            )
            for m in messages
            if m.message_id in found
        )

    def _label_viewer(self, reply: Any, user_id: str, now: float) -> None:
        """Experiment and arm of an optional viewer (pinned cards are not targeted, so every
        arm gets them; the labels let analysts attribute what each arm saw)."""
        if user_id:
            _label(reply, *self.experiments.assign(user_id, now))

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
        """Not a snapshot read: validation needs the catalog (when one is pinned) to fill in
        rumors, and the answer says what Redis holds (``service.writes``): OK once stored,
        UNAVAILABLE when nothing was sent, UNKNOWN when it may be stored."""
        version = self.watcher.version
        catalog = self.reader.cached_catalog(version) if version else None
        if catalog is not None and self.live is not None:
            catalog = self.live.catalog(version, catalog)  # live debunks name their rumors
        if version and catalog is None:
            try:
                catalog = await within_deadline(context, self.reader.catalog(version))
            except STORE_ERRORS as e:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"events not stored: {type(e).__name__}"
                )
        events = await valid(
            context, validation.events, list(request.events), catalog, now=time.time()
        )
        events = [self._label_event(e) for e in events]
        await store_events(context, self.events, events)
        return pb.RecordEventsResponse(accepted=len(events))

    async def RecordExposures(
        self, request: pb.RecordExposuresRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordExposuresResponse:
        """Live exposures into the users' live state (``service.ingest``)."""
        return await self.intake.record(request, context)


def _label(reply: Any, exp: Experiment | None, arm: Arm | None) -> None:
    """Set the experiment and arm fields of an answer (left empty when no experiment runs)."""
    if exp is not None and arm is not None:
        reply.experiment, reply.arm = exp.name, arm.name
