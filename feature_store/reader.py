"""Reads for the service: the current version, the catalog (cached per version), a user's state."""

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
from feature_store.resp import LocalLane, RespPool, as_dict


class SnapshotReader:
    """Async reads of one Redis; every user read is a single round trip to one slot."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        cached_versions: int = 2,
        fast: RespPool | None = None,
        local: LocalLane | None = None,
    ) -> None:
        self.client = client
        self.fast = fast  # the lean pipelined client for feed reads, when it can reach Redis
        self.local = local  # blocking reads of one user's feed, when Redis is on this machine
        self._catalogs: dict[str, Catalog] = {}
        self._cached_versions = cached_versions
        self._lock = asyncio.Lock()

    async def current_version(self) -> str | None:
        """The version the pointer names, or None before the first materialization."""
        raw = await self.client.get(keys.CURRENT)
        return raw.decode() if raw else None

    async def poll(self, pinned: str | None) -> tuple[str | None, bool]:
        """One round trip for the snapshot watcher: the version the pointer names, and whether
        ``pinned``'s meta key still exists (False when Redis lost it: restarted empty, rolled
        back); ``pinned`` None gives (pointer, False)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(keys.CURRENT)
            if pinned is not None:
                pipe.exists(keys.meta(pinned))
            replies = await pipe.execute()
        raw = replies[0]
        return (raw.decode() if raw else None), bool(pinned is not None and replies[1])

    async def version_exists(self, version: str) -> bool:
        """Whether ``version``'s meta key exists (a pointer may outlive the keys it names)."""
        return bool(await self.client.exists(keys.meta(version)))

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
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.rumors(version))
            pipe.hgetall(keys.debunks(version))
            pipe.hgetall(keys.model(version))
            raw_rumors, raw_debunks, raw_model = await pipe.execute()
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
        if self.fast is not None:
            (raw,) = await self.fast.execute([(b"HMGET", keys.items(version), *item_ids)])
        else:
            raw = await self.client.hmget(keys.items(version), item_ids)
        return [r.decode().split(",") if r else [] for r in raw]

    async def exposed_members(
        self, version: str, members: list[str], rumor_ids: list[str]
    ) -> dict[str, list[str]]:
        """rumor_id -> the ``members`` exposed to it in ``version``; one pipelined round trip."""
        out: dict[str, list[str]] = {r: [] for r in rumor_ids}
        if not members or not rumor_ids:
            return out
        if self.fast is not None:
            rows = await self.fast.execute(
                [(b"HMGET", keys.user_exposures(version, m), *rumor_ids) for m in members]
            )
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.hmget(keys.user_exposures(version, member), rumor_ids)
                rows = await pipe.execute()
        for member, values in zip(members, rows, strict=True):
            for rumor, value in zip(rumor_ids, values, strict=True):
                if value is not None:
                    out[rumor].append(member)
        return out

    async def user_exposures(self, version: str, user_id: str) -> list[ExposureState]:
        """Every exposure state of one user in ``version`` (empty for an unknown user)."""
        key = keys.user_exposures(version, user_id)
        if self.fast is not None:
            (flat,) = await self.fast.execute([(b"HGETALL", key)])
            return decode_exposures(as_dict(flat))
        return decode_exposures(await self.client.hgetall(key))

    async def user_view(
        self, version: str, user_id: str, *, surface: str, now: float
    ) -> tuple[list[ExposureState], Delivery]:
        """Exposure state, delivery state and today's served count: one pipelined round trip.

        All three keys carry the user's hash tag, so on a cluster they live on one node.
        """
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.user_exposures(version, user_id))
            pipe.hgetall(keys.delivery(user_id))
            pipe.hget(keys.daily_caps(user_id, day_of(now)), surface)
            exposures, delivery, served_today = await pipe.execute()
        return decode_exposures(exposures), decode(delivery, served_today)

    async def feeds_view(
        self,
        version: str,
        user_ids: list[str],
        *,
        surface: str,
        now: float,
        timeout: float | None = None,
    ) -> list[tuple[list[ExposureState], Delivery, UserModel]]:
        """For each user: exposure state, delivery state with today's served count, and the model
        side (factors, prebunks); all users in one pipelined round trip (per node on a cluster).
        TimeoutError when ``timeout`` seconds pass first."""
        user_keys = keys.feed_keys(version, user_ids, day_of(now))
        if self.fast is not None:
            payload = feed_payload(user_keys, surface)
            flat = await self.fast.send(payload, 4 * len(user_keys), timeout)
            raw = [r if i % 4 == 2 else as_dict(r) for i, r in enumerate(flat)]
        else:
            async with (
                asyncio.timeout(timeout),
                self.client.pipeline(transaction=False) as pipe,
            ):
                for exposures, delivery, caps, model in user_keys:
                    pipe.hgetall(exposures)
                    pipe.hgetall(delivery)
                    pipe.hget(caps, surface)
                    pipe.hgetall(model)
                raw = await pipe.execute()
        return _decode_views(raw)

    def local_feed_view(
        self, version: str, user_id: str, *, surface: str, now: float, timeout: float
    ) -> tuple[list[ExposureState], Delivery, UserModel]:
        """feed_view as one blocking round trip over the local lane (see LocalLane); only
        when ``local`` is set and usable."""
        assert self.local is not None, "no local lane"
        user_keys = keys.feed_keys(version, [user_id], day_of(now))
        flat = self.local.send(feed_payload(user_keys, surface), 4, timeout)
        return _decode_views([r if i % 4 == 2 else as_dict(r) for i, r in enumerate(flat)])[0]

    async def feed_view(
        self, version: str, user_id: str, *, surface: str, now: float, timeout: float | None = None
    ) -> tuple[list[ExposureState], Delivery, UserModel]:
        """user_view plus the user's model side, in the same single round trip (one hash tag)."""
        views = await self.feeds_view(version, [user_id], surface=surface, now=now, timeout=timeout)
        return views[0]


def feed_payload(user_keys: list[tuple[bytes, bytes, bytes, bytes]], surface: str) -> bytes:
    """The four reads of each user's feed view, in order, as one RESP buffer: HGETALL of the
    exposures and of the delivery state, HGET of today's cap for ``surface``, HGETALL of the
    model side (what resp.encode gives for those commands, built in one format per user)."""
    s = surface.encode()
    field = b"$%d\r\n%s\r\n" % (len(s), s)
    return b"".join(
        _FEED_READ % (len(e), e, len(d), d, len(c), c, field, len(m), m) for e, d, c, m in user_keys
    )


_FEED_READ = (
    b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
    b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
    b"*3\r\n$4\r\nHGET\r\n$%d\r\n%s\r\n%s"
    b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
)


def _decode_views(raw: list) -> list[tuple[list[ExposureState], Delivery, UserModel]]:
    """Per user: exposures, delivery (with today's served count) and model side."""
    return [
        (decode_exposures(raw[i]), decode(raw[i + 1], raw[i + 2]), decode_user_model(raw[i + 3]))
        for i in range(0, len(raw), 4)
    ]


def decode_exposures(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """Decode a user's exposure hash as HGETALL returns it."""
    return [unpack_exposure(k.decode(), v) for k, v in raw.items()]
