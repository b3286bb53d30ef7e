"""Reads for the service: the current version, the catalog (cached per version), users' state.

Every read goes through one ``StoreTransport`` (chosen when connecting), so this module knows
keys and decoding, not how the bytes travel."""

from __future__ import annotations

import asyncio

import redis.asyncio

from domain.delivery import Delivery, day_of
from domain.models import UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor
from feature_store import keys
from feature_store.codecs import load_json, unpack_exposure
from feature_store.delivery import decode
from feature_store.models import decode_feed_model, decode_user_model
from feature_store.transport.base import StoreTransport

FeedView = tuple[list[ExposureState], Delivery, UserModel]


class SnapshotReader:
    """Async reads of one Redis deployment; every user read is a single round trip to one slot."""

    def __init__(self, transport: StoreTransport, *, cached_versions: int = 2) -> None:
        self.transport = transport
        self._catalogs: dict[str, Catalog] = {}
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

    async def poll(self, pinned: str | None) -> tuple[str | None, bool]:
        """One round trip for the snapshot watcher: the version the pointer names, and whether
        ``pinned``'s meta key still exists (False when Redis lost it: restarted empty, rolled
        back); ``pinned`` None gives (pointer, False)."""
        commands: list[tuple[bytes, ...]] = [(b"GET", keys.CURRENT)]
        if pinned is not None:
            commands.append((b"EXISTS", keys.meta(pinned)))
        replies = await self.transport.pipeline(commands)
        raw = replies[0]
        return (raw.decode() if raw else None), bool(pinned is not None and replies[1])

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
                    self._catalogs.pop(next(iter(self._catalogs)))
            return self._catalogs[version]

    async def _load_catalog(self, version: str) -> Catalog:
        raw_rumors, raw_debunks, raw_model = await self.transport.pipeline(
            [
                (b"HGETALL", keys.rumors(version)),
                (b"HGETALL", keys.debunks(version)),
                (b"HGETALL", keys.model(version)),
            ]  # fmt: skip
        )
        rumors = [Rumor.from_dict(load_json(v)) for v in raw_rumors.values()]
        debunks = [Debunk.from_dict(load_json(v)) for v in raw_debunks.values()]
        return Catalog.build(rumors, debunks, decode_feed_model(raw_model))

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
        self, version: str, members: list[str], among: list[str] | None = None
    ) -> list[set[str]]:
        """For each of ``members`` (in order): the rumor ids they are exposed to in ``version``;
        one pipelined round trip. Given ``among``, only those rumors are asked for (HMGET: the
        cheaper read for a few); else every exposure's rumor id (HKEYS: the cheaper one when the
        rumors asked about outnumber what a user saw, e.g. a large claim cluster)."""
        if not members or (among is not None and not among):
            return [set() for _ in members]
        if among is None:
            rows = await self.transport.pipeline(
                [(b"HKEYS", keys.user_exposures(version, m)) for m in members]
            )
            return [{r.decode() for r in row} for row in rows]
        rows = await self.transport.pipeline(
            [(b"HMGET", keys.user_exposures(version, m), *among) for m in members]
        )
        return [{r for r, v in zip(among, row, strict=True) if v is not None} for row in rows]

    async def user_exposures(self, version: str, user_id: str) -> list[ExposureState]:
        """Every exposure state of one user in ``version`` (empty for an unknown user)."""
        return decode_exposures(await self.transport.hgetall(keys.user_exposures(version, user_id)))

    async def feeds_view(
        self,
        version: str,
        user_ids: list[str],
        *,
        surface: str,
        now: float,
        timeout: float | None = None,
    ) -> list[FeedView]:
        """For each user: exposure state, delivery state with today's served count, and the model
        side (factors, prebunks); all users in one pipelined round trip (per node on a cluster).
        TimeoutError when ``timeout`` seconds pass first."""
        user_keys = keys.feed_keys(version, user_ids, day_of(now))
        return _decode_views(await self.transport.feed_reads(user_keys, surface, timeout))

    async def feed_view(
        self, version: str, user_id: str, *, surface: str, now: float, timeout: float | None = None
    ) -> FeedView:
        """One user's feeds_view: exposures, delivery with today's served count for ``surface``,
        and model side, in a single round trip (the keys share the user's hash tag)."""
        views = await self.feeds_view(version, [user_id], surface=surface, now=now, timeout=timeout)
        return views[0]


def _decode_views(raw: list) -> list[FeedView]:
    """Per user: exposures, delivery (with today's served count) and model side."""
    return [
        (decode_exposures(raw[i]), decode(raw[i + 1], raw[i + 2]), decode_user_model(raw[i + 3]))
        for i in range(0, len(raw), 4)
    ]


def decode_exposures(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """Decode a user's exposure hash as HGETALL returns it."""
    return [unpack_exposure(k.decode(), v) for k, v in raw.items()]
