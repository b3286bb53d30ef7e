"""Reads for the service: the current version, the catalog (cached per version), users' state.

Every read goes through one ``StoreTransport`` (chosen when connecting), so this module knows
keys and decoding, not how the bytes travel. A user's read also brings the live (backfilled)
exposure hash and the live-ingested days from the snapshot's watermark on in the same round
trip: the backfilled states replace the snapshot's (domain.exposure_layers), the live buckets at
or after the watermark add to them (domain.exposure_days: every consumer, RankFeed,
RankFeedBatch, SearchTop, GroupWarnings and the A/B arms, reads through ``_with_meta`` or
``feeds_view`` here, so one rule decides which buckets count)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import redis.asyncio

from domain.delivery import day_of
from domain.exposure_days import LiveDay, add_days, day_end, live_days
from domain.exposure_layers import exposed_in_layers, merge_layers
from domain.membership import MemberFilter
from domain.records import Catalog, Debunk, ExposureState, Rumor, named_states
from feature_store import keys, members
from feature_store.codecs import load_json, unpack_live_exposure
from feature_store.delivery import decode
from feature_store.live_ingest import day_rumors, watermark_command, watermark_of
from feature_store.models import decode_feed_model
from feature_store.row_cache import Rows, SnapshotRows
from feature_store.transport.base import StoreTransport
from feature_store.views import (
    FeedView,
    decode_exposures,
    decode_live,
    decode_live_views,
    decode_views,
    decoded_days,
    layered,
)

__all__ = ["FeedView", "SnapshotReader", "decode_exposures", "decode_live"]


class SnapshotReader:
    """Async reads of one Redis deployment; every user read is a single round trip to one slot."""

    def __init__(
        self,
        transport: StoreTransport,
        *,
        cached_versions: int = 2,
        live_exposures: bool = True,
        rows: SnapshotRows | None = None,
    ) -> None:
        """``live_exposures=False`` reads the snapshot alone (the benchmark's baseline);
        ``rows`` keeps users' decoded snapshot rows for feed reads (None: every read brings
        them)."""
        self.transport = transport
        self.rows = rows
        self.live = live_exposures
        self._catalogs: dict[str, Catalog] = {}
        self._as_of: dict[str, int] = {}  # version -> its tags_as_of (unix ms; 0 when absent)
        self._covers: dict[str, int | None] = {}  # version -> its watermark (unix s)
        # version -> its member filter and the first live-members id it needs (None: no filter)
        self._members: dict[str, tuple[MemberFilter, bytes] | None] = {}
        self._cached_versions = cached_versions
        self._lock = asyncio.Lock()

    @property
    def client(self) -> redis.asyncio.Redis:
        """The transport's redis-py client, for writes and the keys outside snapshots."""
        return self.transport.client

    async def current_version(self) -> str | None:
        """The version the pointer names, or None before the first materialization."""
        raw = await self.transport.get(keys.CURRENT)
        return raw.decode() if raw else None

    async def poll(self, pinned: str | None) -> tuple[str | None, bool, int | None]:
        """One round trip for the snapshot watcher: the version the pointer names, whether
        ``pinned``'s meta key still exists (False when Redis lost it: restarted empty, rolled
        back; ``pinned`` None gives False), and the live layer's seq (None: no layer)."""
        commands: list[tuple[bytes, ...]] = [(b"GET", keys.CURRENT), (b"GET", keys.LIVE_SEQ)]
        if pinned is not None:
            commands.append((b"EXISTS", keys.meta(pinned)))
        replies = await self.transport.pipeline(commands)
        raw, seq = replies[0], replies[1]
        there = bool(pinned is not None and replies[2])
        return (raw.decode() if raw else None), there, (int(seq) if seq is not None else None)

    async def version_exists(self, version: str) -> bool:
        """Whether ``version``'s meta key exists (a pointer may outlive the keys it names)."""
        (found,) = await self.transport.pipeline([(b"EXISTS", keys.meta(version))])
        return bool(found)

    def cached_catalog(self, version: str) -> Catalog | None:
        """The catalog of ``version`` when it is already loaded in this process, else None."""
        return self._catalogs.get(version)

    async def catalog(self, version: str) -> Catalog:
        """The rumors and debunks of ``version``, loaded once and kept in process."""
        cached = self._catalogs.get(version)
        if cached is not None:
            return cached
        async with self._lock:
            if version not in self._catalogs:
                self._catalogs[version] = await self._load_catalog(version)
                while len(self._catalogs) > self._cached_versions:
                    self._as_of.pop(next(iter(self._catalogs)), None)
                    self._covers.pop(next(iter(self._catalogs)), None)
                    self._members.pop(next(iter(self._catalogs)), None)
                    self._catalogs.pop(next(iter(self._catalogs)))
            return self._catalogs[version]

    async def snapshot_as_of(self, version: str) -> int:
        """When ``version``'s nightly read the tags (unix ms; 0 for a snapshot without the
        stamp): cached with the catalog, else one round trip."""
        cached = self._as_of.get(version)
        if cached is None:
            (raw,) = await self.transport.pipeline([(b"HGET", keys.meta(version), b"tags_as_of")])
            cached = self._as_of[version] = _as_of(raw)
        return cached

    async def live_days(self, version: str, now: float) -> tuple[LiveDay, ...]:
        """The UTC days (and first hour of each) whose live buckets a read at ``now`` adds:
        from ``version``'s watermark on (cached with the catalog, else one round trip)."""
        if version not in self._covers:
            (raw,) = await self.transport.pipeline([watermark_command(version)])
            self._covers[version] = watermark_of(raw)
        return _days(self._covers[version], day_of(now))

    async def _load_catalog(self, version: str) -> Catalog:
        raw_rumors, raw_debunks, raw_model, as_of, covers, flt = await self.transport.pipeline(
            [
                (b"HGETALL", keys.rumors(version)),
                (b"HGETALL", keys.debunks(version)),
                (b"HGETALL", keys.model(version)),
                (b"HGET", keys.meta(version), b"tags_as_of"),
                watermark_command(version),
                (b"GET", keys.members(version)),
            ]  # fmt: skip
        )
        self._as_of[version] = _as_of(as_of)
        self._covers[version] = watermark_of(covers)
        found = members.decode_filter(flt)
        start = members.start_id(self._covers[version], self._as_of[version])
        self._members[version] = None if found is None else (found, start)
        rumors = [Rumor.from_dict(load_json(v)) for v in raw_rumors.values()]
        debunks = [Debunk.from_dict(load_json(v)) for v in raw_debunks.values()]
        return Catalog.build(rumors, debunks, decode_feed_model(raw_model))

    def member_filter(self, version: str) -> tuple[MemberFilter, bytes] | None:
        """``version``'s member filter and the first ``keys.LIVE_MEMBERS`` id a reader of it
        needs, once its catalog is loaded; None before that or when it has no filter."""
        return self._members.get(version)

    async def item_rumors(self, version: str, item_id: str) -> list[str]:
        """The rumors a tagged item carries in ``version`` (empty when it is not tagged)."""
        return (await self.items_rumors(version, [item_id]))[0]

    async def items_rumors(self, version: str, item_ids: list[str]) -> list[list[str]]:
        """item_rumors for many items in one round trip."""
        if not item_ids:
            return []
        (raw,) = await self.transport.pipeline([(b"HMGET", keys.items(version), *item_ids)])
        return [r.decode().split(",") if r else [] for r in raw]

    async def exposed_rumors(
        self,
        version: str,
        members: list[str],
        among: list[str] | None = None,
        now: float | None = None,
    ) -> list[set[str]]:
        """For each of ``members`` (in order): the rumor ids they are exposed to in ``version``
        (the snapshot, a newer backfilled entry, or a live bucket from the snapshot's watermark on;
        ``now``: the request's time, default the clock); one pipelined round trip. Given
        ``among``, only those rumors are asked for (HMGET: the cheaper read for a few); else
        every exposure's rumor id (HKEYS, and the backfill hash whole: the cheaper read when the
        rumors asked about outnumber what a user saw, e.g. a large claim cluster). Live day
        hashes are read by HKEYS either way: their fields carry the bucket's hour."""
        if not members or (among is not None and not among):
            return [set() for _ in members]
        fields = () if among is None else tuple(among)
        snap = b"HKEYS" if among is None else b"HMGET"
        if not self.live:
            rows = await self.transport.pipeline(
                [(snap, keys.user_exposures(version, m), *fields) for m in members]
            )
            return [_rumors_in(row, among) for row in rows]
        live = b"HGETALL" if among is None else b"HMGET"

        def commands(days: tuple[LiveDay, ...]) -> list[tuple[bytes | str, ...]]:
            out: list[tuple[bytes | str, ...]] = []
            for m in members:
                out.append((snap, keys.user_exposures(version, m), *fields))
                out.append((live, keys.live_exposures(m), *fields))
                out.extend((b"HKEYS", keys.live_day(m, d)) for d, _ in days)
            return out

        now = time.time() if now is None else now
        days, rows = await self._with_meta(version, now, commands)
        as_of, per = self._as_of[version], 2 + len(days)
        out = []
        for i in range(len(members)):
            seen = _rumors_in(rows[per * i], among)
            if rows[per * i + 1]:
                seen.update(_newer_live(rows[per * i + 1], among, as_of or 0))
            for (_, hour), day in zip(days, rows[per * i + 2 : per * (i + 1)], strict=True):
                found = day_rumors(day, hour)
                seen |= found if among is None else found.intersection(among)
            out.append(seen)
        return out

    async def user_exposures(
        self, version: str, user_id: str, now: float | None = None
    ) -> list[ExposureState]:
        """Every exposure state of one user in ``version`` (empty for an unknown user), with the
        live layers merged as in a feed read; one round trip."""
        if not self.live:
            return decode_exposures(
                await self.transport.hgetall(keys.user_exposures(version, user_id))
            )
        now = time.time() if now is None else now
        today = day_of(now)

        def commands(days: tuple[LiveDay, ...]) -> list[tuple[bytes | str, ...]]:
            names = tuple(d for d, _ in days)
            (row,) = keys.feed_keys(version, [user_id], today, live=True, live_days=names)
            return [(b"HGETALL", k) for k in (row[0], *row[4:])]

        days, replies = await self._with_meta(version, now, commands)
        as_of = self._as_of[version]
        merged = merge_layers(decode_exposures(replies[0]), decode_live(replies[1]), as_of)
        return add_days(merged, decoded_days(replies[2:], days))

    async def _with_meta(
        self,
        version: str,
        now: float,
        commands: Callable[[tuple[LiveDay, ...]], list[tuple[bytes | str, ...]]],
    ) -> tuple[tuple[LiveDay, ...], list[Any]]:
        """``commands(days)`` for the live days of a read at ``now``, in one round trip. What
        the catalog caches (tags_as_of, the watermark) and is not cached yet is asked in the
        same round trip, the days guessed as if the watermark were today's midnight; a second
        trip only when the guess names other days (a version's first read, a late nightly; a
        watermark later in today only changes which fields count, so it needs none)."""
        today = day_of(now)
        covers = self._covers.get(version, False)
        guess = _days(covers, today) if covers is not False else _days(_midnight(today), today)
        extra: list[tuple[bytes | str, ...]] = []
        need_as_of = version not in self._as_of  # decided once: another read may fill it
        if need_as_of:
            extra.append((b"HGET", keys.meta(version), b"tags_as_of"))
        if covers is False:
            extra.append(watermark_command(version))
        replies = await self.transport.pipeline([*commands(guess), *extra])
        if covers is False:
            covers = self._covers[version] = watermark_of(replies.pop())
        if need_as_of:
            self._as_of[version] = _as_of(replies.pop())
        real = _days(covers, today)
        if [d for d, _ in real] != [d for d, _ in guess]:
            replies = await self.transport.pipeline(commands(real))
        return real, replies

    async def feeds_view(
        self,
        version: str,
        user_ids: list[str],
        *,
        surface: str,
        now: float,
        timeout: float | None = None,
        trusted: Callable[[], bool] | None = None,
        live_rows: Callable[[str], bool] | None = None,
        plain: bool = False,
    ) -> list[FeedView]:
        """For each user: exposure state, delivery state with today's served count, and the model
        side (factors, prebunks); all users in one pipelined round trip (per node on a cluster).
        TimeoutError when ``timeout`` seconds pass first. With ``trusted`` (whether the store
        still holds the pinned snapshot, asked before and after the read) and ``rows``, users
        whose snapshot rows are kept are asked only for delivery, caps and the live layers;
        with ``live_rows`` (False for a user known to have no live rows: not announced,
        service.membership) such a user is asked for delivery and caps alone. With ``plain``,
        such a user's exposure states are the kept plain tuples (``SnapshotRows.get``: fields
        by position, as ``ranking.fused`` reads them), not ExposureStates."""
        if not self.live:
            user_keys = keys.feed_keys(version, user_ids, day_of(now))
            return decode_views(await self.transport.feed_reads(user_keys, surface, timeout))
        today = day_of(now)
        covers = self._covers.get(version, False)
        days = await self.live_days(version, now) if covers is False else _days(covers, today)
        names = tuple(d for d, _ in days)
        user_keys = keys.feed_keys(version, user_ids, today, live=True, live_days=names)
        rows = self.rows
        if rows is None or not rows.users or trusted is None or not trusted():
            rows = None
        known = [rows.get(version, u, plain) for u in user_ids] if rows is not None else None
        if known is not None and any(known):
            bare = _bare(user_ids, known, live_rows)
            views, cold = await self._warm_views(
                version, user_keys, known, bare, surface, timeout, days
            )
            ids = [u for u, k in zip(user_ids, known, strict=True) if not k]
        else:
            views, cold = await self._cold_views(version, user_keys, surface, timeout, days)
            ids = user_ids
        if rows is not None and trusted is not None and trusted():
            for user_id, kept in zip(ids, cold, strict=True):
                rows.put(version, user_id, kept)
        return views

    async def _cold_views(
        self,
        version: str,
        user_keys: list[tuple[bytes, ...]],
        surface: str,
        timeout: float | None,
        days: tuple[LiveDay, ...],
    ) -> tuple[list[FeedView], list[Rows]]:
        """Every user's whole feed read, and their snapshot rows as decoded."""
        as_of = self._as_of.get(version)
        if as_of is None:  # sent in the same loop turn: the RESP lanes put both in one write
            raw, as_of = await asyncio.gather(
                self.transport.feed_reads(user_keys, surface, timeout),
                self.snapshot_as_of(version),
            )
        else:
            raw = await self.transport.feed_reads(user_keys, surface, timeout)
        return decode_live_views(raw, as_of, days)

    async def _warm_views(
        self,
        version: str,
        user_keys: list[tuple[bytes, ...]],
        known: list[Rows | None],
        bare: list[bool],
        surface: str,
        timeout: float | None,
        days: tuple[LiveDay, ...],
    ) -> tuple[list[FeedView], list[Rows]]:
        """feeds_view when some users' snapshot rows are kept: theirs read without them (the
        snapshot's two keys left out, and the live keys too for the ``bare`` ones), the
        others' whole, in the same loop turn (one write); the others' snapshot rows as decoded
        beside."""
        warm = [
            row[1:3] if b else row[1:3] + row[4:]
            for row, k, b in zip(user_keys, known, bare, strict=True)
            if k
        ]
        cold = [row for row, k in zip(user_keys, known, strict=True) if not k]
        reads = [self.transport.delivery_reads(warm, surface, timeout)]
        if cold:
            reads.append(self.transport.feed_reads(cold, surface, timeout))
        if version not in self._as_of:
            reads.append(self.snapshot_as_of(version))
        got = await reads[0] if len(reads) == 1 else await asyncio.gather(*reads)
        raw_warm = got if len(reads) == 1 else got[0]
        as_of = self._as_of[version]
        cold_views, cold_rows = decode_live_views(got[1], as_of, days) if cold else ([], [])
        cold_iter = iter(cold_views)
        per = 3 + len(days)
        out: list[FeedView] = []
        j = 0
        for kept, b in zip(known, bare, strict=True):
            if not kept:
                out.append(next(cold_iter))
                continue
            states, model = kept
            if b:  # no live rows: the snapshot's states are the user's exposures
                out.append((states, decode(raw_warm[j], raw_warm[j + 1]), model))
                j += 2
                continue
            r = raw_warm[j : j + per]
            if r[2] or any(r[3:]):  # live rows to merge (else the snapshot's states, as layered)
                states = layered(named_states(states), r[2], r[3:], as_of, days)
            out.append((states, decode(r[0], r[1]), model))
            j += per
        return out, cold_rows

    async def feed_view(
        self,
        version: str,
        user_id: str,
        *,
        surface: str,
        now: float,
        timeout: float | None = None,
        trusted: Callable[[], bool] | None = None,
        live_rows: Callable[[str], bool] | None = None,
        plain: bool = False,
    ) -> FeedView:
        """One user's feeds_view: exposures, delivery with today's served count for ``surface``,
        and model side, in a single round trip (the keys share the user's hash tag)."""
        views = await self.feeds_view(
            version, [user_id], surface=surface, now=now, timeout=timeout, trusted=trusted,
            live_rows=live_rows, plain=plain,
        )  # fmt: skip
        return views[0]


def _bare(
    user_ids: list[str], known: list[Rows | None], live_rows: Callable[[str], bool] | None
) -> list[bool]:
    """Which users' reads may leave the live keys out: kept rows, and ``live_rows`` says the
    user has none (None: nobody's)."""
    if live_rows is None:
        return [False] * len(user_ids)
    return [k is not None and not live_rows(u) for u, k in zip(user_ids, known, strict=True)]


@functools.lru_cache(maxsize=64)
def _days(live_after: int | None, today: str) -> tuple[LiveDay, ...]:
    """live_days for a snapshot with the watermark ``live_after`` on the UTC day ``today``."""
    return tuple(live_days(live_after, date.fromisoformat(_iso(today))))


def _midnight(today: str) -> int:
    """The watermark at the start of ``today`` (YYYYMMDD): a nightly over every earlier day."""
    return day_end(date.fromisoformat(_iso(today))) - 86_400


def _iso(day: str) -> str:
    """YYYYMMDD as YYYY-MM-DD."""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def _as_of(raw: bytes | None) -> int:
    """A meta ``tags_as_of`` value as unix milliseconds (0 when the snapshot has none)."""
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def _rumors_in(reply: list, among: list[str] | None) -> set[str]:
    """The rumor ids of an HKEYS reply, or of those of ``among`` an HMGET reply holds."""
    if among is None:
        return {r.decode() for r in reply}
    return {r for r, v in zip(among, reply, strict=True) if v is not None}


def _newer_live(reply: dict | list, among: list[str] | None, as_of: int) -> list[str]:
    """The rumor ids of a member's live hash reply (HGETALL's dict, or HMGET's values of
    ``among``) whose entry is newer than the snapshot stamped ``as_of``."""
    if among is None:
        pairs = [(k.decode(), v) for k, v in reply.items()]
    else:
        pairs = list(zip(among, reply, strict=True))
    return [
        r
        for r, raw in pairs
        if raw is not None and exposed_in_layers(False, unpack_live_exposure(r, raw)[1], as_of)
    ]
