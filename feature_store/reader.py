"""Reads for the service: the current version, the catalog (cached per version), users' state.

Every read goes through one ``StoreTransport`` (chosen when connecting), so this module knows
keys and decoding, not how the bytes travel. A user's read also brings the live (backfilled)
exposure hash in the same round trip, merged over the snapshot's by domain.exposure_layers."""

from __future__ import annotations

import asyncio

import redis.asyncio

from domain.delivery import Delivery, day_of
from domain.exposure_layers import LiveEntry, exposed_in_layers, merge_layers
from domain.models import UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor
from feature_store import keys
from feature_store.codecs import load_json, unpack_exposure, unpack_live_exposure
from feature_store.delivery import decode
from feature_store.models import decode_feed_model, decode_user_model
from feature_store.transport.base import StoreTransport

FeedView = tuple[list[ExposureState], Delivery, UserModel]


class SnapshotReader:
    """Async reads of one Redis deployment; every user read is a single round trip to one slot."""

    def __init__(
        self, transport: StoreTransport, *, cached_versions: int = 2, live_exposures: bool = True
    ) -> None:
        """``live_exposures=False`` reads the snapshot alone (the benchmark's baseline)."""
        self.transport = transport
        self.live = live_exposures
        self._catalogs: dict[str, Catalog] = {}
        self._as_of: dict[str, int] = {}  # version -> its tags_as_of (unix ms; 0 when absent)
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

    async def _load_catalog(self, version: str) -> Catalog:
        raw_rumors, raw_debunks, raw_model, as_of = await self.transport.pipeline(
            [
                (b"HGETALL", keys.rumors(version)),
                (b"HGETALL", keys.debunks(version)),
                (b"HGETALL", keys.model(version)),
                (b"HGET", keys.meta(version), b"tags_as_of"),
            ]  # fmt: skip
        )
        self._as_of[version] = _as_of(as_of)
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
        """For each of ``members`` (in order): the rumor ids they are exposed to in ``version``
        (the snapshot, or a newer live entry); one pipelined round trip. Given ``among``, only
        those rumors are asked for (HMGET: the cheaper read for a few); else every exposure's
        rumor id (HKEYS, and the live hash whole: the cheaper read when the rumors asked about
        outnumber what a user saw, e.g. a large claim cluster)."""
        if not members or (among is not None and not among):
            return [set() for _ in members]
        fields = () if among is None else tuple(among)
        snap = b"HKEYS" if among is None else b"HMGET"
        live = b"HGETALL" if among is None else b"HMGET"
        commands: list[tuple[bytes | str, ...]] = []
        for m in members:
            commands.append((snap, keys.user_exposures(version, m), *fields))
            if self.live:
                commands.append((live, keys.live_exposures(m), *fields))
        as_of = self._as_of.get(version)
        if self.live and as_of is None:  # not cached with the catalog: in the same round trip
            commands.append((b"HGET", keys.meta(version), b"tags_as_of"))
        rows = await self.transport.pipeline(commands)
        if self.live and as_of is None:
            as_of = self._as_of[version] = _as_of(rows.pop())
        step = 2 if self.live else 1
        out = []
        for i in range(0, len(rows), step):
            if among is None:
                seen = {r.decode() for r in rows[i]}
            else:
                seen = {r for r, v in zip(among, rows[i], strict=True) if v is not None}
            if self.live and rows[i + 1]:
                seen.update(_newer_live(rows[i + 1], among, as_of or 0))
            out.append(seen)
        return out

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
        user_keys = keys.feed_keys(version, user_ids, day_of(now), live=self.live)
        if not self.live:
            return _decode_views(await self.transport.feed_reads(user_keys, surface, timeout))
        as_of = self._as_of.get(version)
        if as_of is None:  # sent in the same loop turn: the RESP lanes put both in one write
            raw, as_of = await asyncio.gather(
                self.transport.feed_reads(user_keys, surface, timeout),
                self.snapshot_as_of(version),
            )
        else:
            raw = await self.transport.feed_reads(user_keys, surface, timeout)
        return _decode_live_views(raw, as_of)

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


def _decode_live_views(raw: list, as_of: int) -> list[FeedView]:
    """_decode_views of five replies per user, the live exposures merged over the snapshot's."""
    return [
        (
            merge_layers(decode_exposures(raw[i]), decode_live(raw[i + 4]), as_of),
            decode(raw[i + 1], raw[i + 2]),
            decode_user_model(raw[i + 3]),
        )
        for i in range(0, len(raw), 5)
    ]


def decode_live(raw: dict[bytes, bytes]) -> dict[str, LiveEntry]:
    """Decode a user's live exposure hash as HGETALL returns it: rumor_id -> (state, as-of)."""
    return {k.decode(): unpack_live_exposure(k.decode(), v) for k, v in raw.items()}


def _as_of(raw: bytes | None) -> int:
    """A meta ``tags_as_of`` value as unix milliseconds (0 when the snapshot has none)."""
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def decode_exposures(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """Decode a user's exposure hash as HGETALL returns it."""
    return [unpack_exposure(k.decode(), v) for k, v in raw.items()]


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
