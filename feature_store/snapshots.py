"""Materialization: write a whole snapshot under a new version, then flip one pointer atomically.

The service reads only the version the pointer names, so it never sees half of a new night.
A write killed at any point leaves the current version serving; garbage collection removes
versions older than the newest ``keep``, and partial writes whose writer is gone (its process
no longer runs on this host, or its heartbeat went silent).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
import redis.cluster

from domain.ids import ID_PATTERN
from domain.membership import MemberFilter, id_hashes
from domain.models import MAX_PREBUNKS, OPTION_SLOTS, FeedModel
from domain.records import Debunk, Rumor
from domain.vocab import ACTIONS
from feature_store import keys, liveness
from feature_store.bulk import BulkLoader
from feature_store.codecs import TAG_SCORE_STEPS, dump_json, encode_item_scores
from feature_store.models import PairScorer, encode_feed_model, encode_prebunks, pack_logits
from feature_store.snapshot_gc import (  # noqa: F401  (re-exported: callers import them from here)
    ABANDON_AFTER_S,
    collect_garbage,
    current_version,
    unlink_matching,
    writer_abandoned,
)
from feature_store.transport.encoding import hset_payload

HEARTBEAT_EVERY_S = 30
# Connections a bulk exposure write spreads its payloads over (feature_store.bulk; measured in
# docs/benchmarks.md, decision 0045).
BULK_CONNECTIONS = 4
_PACKED = np.dtype(
    [("v", "u1"), ("n", "<u4"), ("f", "<u4"), ("l", "<u4"), ("a", "u1"), ("m", "u1")]
)
# codecs v2: the same, then the ranker's logits of the rumor's options (count, float32 slots).
_SCORED = np.dtype(_PACKED.descr + [("k", "u1"), ("o", "<f4", (OPTION_SLOTS,))])


def new_version(now: datetime | None = None) -> str:
    """A sortable version name from the current UTC time, to the microsecond."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%f")


@dataclass
class WriteSummary:
    """What one materialization wrote."""

    version: str
    users: int = 0
    pairs: int = 0
    rumors: int = 0
    debunks: int = 0
    items: int = 0
    model_users: int = 0
    skipped_invalid_ids: int = 0
    seconds: float = 0.0
    gc_seconds: float = 0.0
    redis_bytes: int = 0
    collected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if self.seconds:
            out["pairs_per_s"] = round(self.pairs / self.seconds)
        if self.redis_bytes and self.pairs:
            out["redis_bytes_per_pair"] = round(self.redis_bytes / self.pairs, 1)
        return out


def _prebunk_logits(
    scorer: PairScorer, prebunks: Mapping[str, list[tuple[str, float]]], users: list[str]
) -> dict[str, bytes]:
    """Per user of ``users``, the packed option logits of the prebunk rumors
    ``encode_prebunks`` keeps, in the same order (one vectorised scoring of the users' pairs;
    called a batch of users at a time, so memory follows the batch, not every pick)."""
    owners: list[str] = []
    rumors: list[str] = []
    for user in users:
        kept = prebunks.get(user)
        if kept:
            picked = kept[:MAX_PREBUNKS]
            owners.extend([user] * len(picked))
            rumors.extend(r for r, _ in picked)
    if not owners:
        return {}
    counts, logits = scorer.score(pa.array(owners), pa.array(rumors))
    out: dict[str, list[bytes]] = {}
    for i, user in enumerate(owners):
        out.setdefault(user, []).append(pack_logits(logits[i, : counts[i]].tolist()))
    return {user: b"".join(parts) for user, parts in out.items()}


def _pack_states(
    batch: pa.RecordBatch, scores: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Pack every row of an exposure batch into 15-byte values (32 with ``scores``, the
    PairScorer's counts and logits of each row), vectorised."""
    n = batch.num_rows
    out = np.zeros(n, dtype=_PACKED if scores is None else _SCORED)
    out["v"] = 1 if scores is None else 2
    if scores is not None:
        out["k"], out["o"] = scores
    out["n"] = np.minimum(batch.column("exposures").to_numpy(zero_copy_only=False), 0xFFFFFFFF)
    for name, col in (("f", "first_ts"), ("l", "last_ts")):
        ts = pc.cast(batch.column(col), pa.timestamp("s", tz="UTC"), safe=False)
        out[name] = ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
    action = batch.column("strongest_action")
    if pa.types.is_string(action.type) or pa.types.is_large_string(action.type):
        action = pc.index_in(action, value_set=pa.array(ACTIONS))
    out["a"] = action.fill_null(0).to_numpy(zero_copy_only=False)
    out["m"] = batch.column("surface_mask").to_numpy(zero_copy_only=False)
    return out


def pack_state_rows(batch: pa.RecordBatch) -> np.ndarray:
    """Every row of an exposure batch as a codec-1 record (15 bytes, without the tag-score
    byte), exactly as a snapshot packs it: for writers outside snapshots
    (feature_store.live_exposures)."""
    return _pack_states(batch)


def tag_score_bytes(batch: pa.RecordBatch) -> np.ndarray:
    """Each row's trailing tag-score byte (codecs.tag_score_byte, vectorised): 255 when the
    batch has no ``tag_score`` column or the score is null."""
    n = batch.num_rows
    if "tag_score" not in batch.schema.names:
        return np.full(n, TAG_SCORE_STEPS, dtype=np.uint8)
    score = pc.fill_null(batch.column("tag_score").cast(pa.float64()), 1.0)
    raw = np.nan_to_num(score.to_numpy(zero_copy_only=False), nan=1.0)
    return np.rint(np.clip(raw, 0.0, 1.0) * TAG_SCORE_STEPS).astype(np.uint8)


def with_tag_scores(records: np.ndarray, scores: np.ndarray) -> pa.Array:
    """Fixed-size value records (``records``: n rows of bytes) as a binary array, each
    followed by its tag-score byte when that is below 255 (a fixed-size array when none is)."""
    n, width = records.shape
    tail = scores != TAG_SCORE_STEPS
    if not tail.any():
        return pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(records).tobytes())]
        )
    data = np.concatenate([records, scores[:, None]], axis=1)
    keep = np.ones(data.shape, dtype=bool)
    keep[:, width] = tail
    offsets = np.concatenate([[0], np.cumsum(width + tail)]).astype(np.int32)
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data[keep].tobytes())]
    )


class SnapshotWriter:
    """Writes one snapshot version; nothing is visible to readers until ``commit``."""

    def __init__(
        self,
        client: redis.Redis,
        version: str | None = None,
        *,
        batch_users: int = 2000,
        chunk_pairs: int = 50_000,
        register: bool = True,
        bulk_connections: int = BULK_CONNECTIONS,
    ):
        """A writer of ``version`` (a new one by default). ``register=False`` makes a writer
        of exposures into a version another process registered and will commit (an executor
        task, see partition_writer): it clears nothing, records no writer and never beats.
        ``bulk_connections``: how many connections an exposure write streams over."""
        self.client = client
        self.chunk_pairs = chunk_pairs
        self.bulk_connections = bulk_connections
        self._last_user: str | None = None
        self.version = keys.check_version(version or new_version())
        self.batch_users = batch_users
        self.summary = WriteSummary(self.version)
        self._started = time.perf_counter()
        self._writer = {**liveness.me(), "started": time.time()}
        # Hashes of every user given an exposure or prebunk row: the member filter (see
        # commit); None once another process wrote rows this writer never saw.
        self._members: list[np.ndarray] | None = []
        self._beat_at = 0.0 if register else math.inf
        if register:
            self._clear_partial()
            self._beat(force=True)
            client.hset(keys.meta(self.version), mapping={"state": "writing"})

    def _beat(self, *, force: bool = False) -> None:
        """Record in ``keys.WRITING`` that this writer is alive (host, pid, its start time and
        now), at most every HEARTBEAT_EVERY_S: GC collects a partial version only when its
        writer is gone or silent."""
        now = time.time()
        if force or now - self._beat_at >= HEARTBEAT_EVERY_S:
            record = json.dumps({**self._writer, "heartbeat": now})
            self.client.hset(keys.WRITING, self.version, record)
            self._beat_at = now

    @contextlib.contextmanager
    def beating(self) -> Iterator[None]:
        """Keep this writer's heartbeat going from a thread while the block runs: for a write
        done elsewhere (Spark executors) while this process only waits for it."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_EVERY_S):
                self._beat(force=True)

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.version}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def abandon(self) -> None:
        """Record that this write gave up (its executors failed): the next garbage collection
        removes the partial version at once, though this process may still run."""
        record = json.dumps({**self._writer, "heartbeat": time.time(), "abandoned": True})
        self.client.hset(keys.WRITING, self.version, record)

    def add_counts(
        self, users: int, pairs: int, skipped_invalid_ids: int, members: np.ndarray | None = None
    ) -> None:
        """Count exposures that other processes wrote into this version (see beating);
        ``members``: the ``id_hashes`` rows of the users they gave rows (their
        ``member_hashes``), for the member filter; None: not known, so no filter is written."""
        self.summary.users += users
        self.summary.pairs += pairs
        self.summary.skipped_invalid_ids += skipped_invalid_ids
        if members is None:
            self._members = None  # readers then treat every user as a member
        elif self._members is not None and len(members):
            self._members.append(members)

    def member_hashes(self) -> np.ndarray | None:
        """The ``id_hashes`` rows of every user this writer gave a row (repeats possible);
        None once rows came from elsewhere unannounced (``add_counts`` without members)."""
        if self._members is None:
            return None
        return np.concatenate(self._members) if self._members else np.empty((0, 2), "<u8")

    def _clear_partial(self) -> None:
        """Remove whatever an earlier, killed write of this same version left behind."""
        unlink_matching(self.client, keys.version_pattern(self.version))

    def write_catalog(self, rumors: Iterable[Rumor], debunks: Iterable[Debunk]) -> None:
        """Write the rumor and debunk catalogs of this version."""
        pipe = self.client.pipeline(transaction=False)
        rumor_map = {r.rumor_id: dump_json(r.to_dict()) for r in rumors}
        debunk_map = {d.debunk_id: dump_json(d.to_dict()) for d in debunks}
        if rumor_map:
            pipe.hset(keys.rumors(self.version), mapping=rumor_map)
        if debunk_map:
            pipe.hset(keys.debunks(self.version), mapping=debunk_map)
        pipe.execute()
        self.summary.rumors += len(rumor_map)
        self.summary.debunks += len(debunk_map)

    def write_items(
        self,
        item_rumors: dict[str, list[str]],
        scores: dict[str, dict[str, float]] | None = None,
    ) -> None:
        """Write which rumors each tagged item carries (for comment tops and group warnings),
        and the scores of its tags below 1.0 (``scores``: item -> rumor -> score; live ingest
        weighs a live exposure with them)."""
        pipe = self.client.pipeline(transaction=False)
        mapping: dict[str, str] = {}
        for item, rumors in item_rumors.items():
            if keys.valid_id(item) and all(keys.valid_id(r) for r in rumors):
                mapping[item] = ",".join(sorted(rumors))
            if len(mapping) >= 10_000:
                pipe.hset(keys.items(self.version), mapping=mapping)
                mapping = {}
        if mapping:
            pipe.hset(keys.items(self.version), mapping=mapping)
        kept = {i: {r: v for r, v in by.items() if r in item_rumors.get(i, ())}
                for i, by in (scores or {}).items() if keys.valid_id(i)}  # fmt: skip
        scored = encode_item_scores(kept)
        for lo in range(0, len(scored), 10_000):
            chunk = dict(list(scored.items())[lo : lo + 10_000])
            pipe.hset(keys.item_scores(self.version), mapping=chunk)
        pipe.execute()
        self.summary.items += len(item_rumors)

    def write_models(
        self,
        model: FeedModel | None,
        user_factors: dict[str, np.ndarray],
        prebunks: Mapping[str, list[tuple[str, float]]],
        scorer: PairScorer | None = None,
    ) -> None:
        """Write the learned models: the debunk side as one hash, each user's side under the
        user's hash tag (``f``: float32 factors, ``p``: prebunk rumors; with a ``scorer``,
        ``q``: the ranker's logits of each prebunk rumor's options, as codecs.pack_logits)."""
        pipe = self.client.pipeline(transaction=False)
        if model is not None:
            pipe.hset(keys.model(self.version), mapping=encode_feed_model(model))
        users = sorted(set(user_factors) | set(prebunks))
        written = 0
        for lo in range(0, len(users), self.batch_users):
            batch = users[lo : lo + self.batch_users]
            logits = _prebunk_logits(scorer, prebunks, batch) if scorer is not None else {}
            prebunked: list[str] = []  # hashed for the member filter a batch at a time
            for user in batch:
                if not keys.valid_id(user):
                    self.summary.skipped_invalid_ids += 1
                    continue
                fields: dict[bytes, bytes] = {}
                if user in user_factors:
                    fields[b"f"] = np.ascontiguousarray(user_factors[user], dtype="<f4").tobytes()
                kept = prebunks.get(user)
                if kept:
                    fields[b"p"] = encode_prebunks(kept)
                    if user in logits:
                        fields[b"q"] = logits[user]
                    prebunked.append(user)
                if not fields:  # no factors and an empty prebunk list: nothing to store
                    continue
                pipe.hset(keys.user_model(self.version, user), mapping=fields)
                written += 1
            pipe.execute()
            self._add_members(prebunked)
            self._beat()
        pipe.execute()  # the model hash when no user has a row
        self.summary.model_users += written

    def write_exposures(
        self, batches: Iterable[pa.RecordBatch], scorer: PairScorer | None = None
    ) -> None:
        """Write per-user exposure hashes from batches with the exposure-state columns; with a
        ``scorer``, each value also carries the ranker's logits of its rumor's options.

        Batches are streamed over ``bulk_connections`` connections, each from a sender thread:
        Redis loads one payload while the next is prepared.
        """
        bulk = (
            None
            if isinstance(self.client, redis.cluster.RedisCluster)
            else BulkLoader(self.client, self.bulk_connections)
        )
        try:
            for batch in batches:
                if batch.num_rows:
                    self._write_batch(batch, bulk, scorer)
                self._beat()
        except BaseException:
            if bulk is not None:
                bulk.abort()
            raise
        if bulk is not None:
            bulk.finish()

    def _write_batch(
        self, batch: pa.RecordBatch, bulk: BulkLoader | None, scorer: PairScorer | None
    ) -> None:
        table = pa.Table.from_batches([batch]).sort_by("user_id").combine_chunks()
        ok = pc.and_(
            pc.match_substring_regex(table["user_id"], ID_PATTERN),
            pc.match_substring_regex(table["rumor_id"], ID_PATTERN),
        )
        valid = table.filter(pc.fill_null(ok, False))
        self.summary.skipped_invalid_ids += table.num_rows - valid.num_rows
        if valid.num_rows == 0:
            return
        users = valid["user_id"].combine_chunks()
        fields = valid["rumor_id"].combine_chunks()
        scores = scorer.score(users, fields) if scorer is not None else None
        rows = valid.to_batches()[0]
        packed = _pack_states(rows, scores)
        records = packed.view(np.uint8).reshape(len(packed), packed.dtype.itemsize)
        values = with_tag_scores(records, tag_score_bytes(rows))
        self._count_users(users)
        self._add_members(pc.unique(users).to_pylist())
        self.summary.pairs += valid.num_rows
        if bulk is None:
            self._write_pipelined(users, fields, values)
            return
        prefix = keys.user_exposures_prefix(self.version)
        start = 0
        while start < valid.num_rows:
            stop = min(start + self.chunk_pairs, valid.num_rows)
            while stop < valid.num_rows and users[stop] == users[stop - 1]:
                stop += 1  # never split one user's fields over two chunks
            payload, n = hset_payload(
                prefix, users[start:stop], fields[start:stop], values[start:stop]
            )
            bulk.send(payload, n)
            start = stop

    def _add_members(self, users: list[str]) -> None:
        """Remember ``users`` for the member filter (nothing once it cannot be whole)."""
        if self._members is not None and users:
            self._members.append(id_hashes(users))

    def _write_members(self, info: dict[str, str]) -> None:
        """Store the member filter of every user given rows (here, or by executors that
        returned their users' hashes), before the flip; none when some rows came from elsewhere
        unannounced: readers then treat every user as a member."""
        hashes = self.member_hashes()
        if hashes is None:
            return
        raw = MemberFilter.build(hashes).to_bytes()
        self.client.set(keys.members(self.version), raw)
        info["member_filter_bytes"] = str(len(raw))

    def _count_users(self, users: pa.Array) -> None:
        distinct = pc.count_distinct(users).as_py()
        if self._last_user is not None and users[0].as_py() == self._last_user:
            distinct -= 1  # the same user continued from the previous batch
        self.summary.users += distinct
        self._last_user = users[-1].as_py()

    def _write_pipelined(self, users: pa.Array, fields: pa.Array, values: pa.Array) -> None:
        """The generic path (Redis Cluster): one HSET per user through redis-py's pipeline."""
        by_user: dict[str, list[bytes | str]] = {}
        for user, rumor, value in zip(
            users.to_pylist(), fields.to_pylist(), values.to_pylist(), strict=True
        ):
            by_user.setdefault(user, []).extend((rumor, value))
        pipe = self.client.pipeline(transaction=False)
        for n, (user, fv) in enumerate(by_user.items(), 1):
            pipe.execute_command("HSET", keys.user_exposures(self.version, user), *fv)
            if n % self.batch_users == 0:
                pipe.execute()
        pipe.execute()

    def commit(self, meta: dict[str, str] | None = None, *, keep: int = 2) -> WriteSummary:
        """Mark the version complete, flip the pointer to it atomically, and collect old ones."""
        self.summary.seconds = round(time.perf_counter() - self._started, 3)
        info = {
            k: str(v)
            for k, v in self.summary.as_dict().items()
            if k not in ("collected", "gc_seconds")
        }
        info.update(meta or {})
        self._write_members(info)
        info["state"] = "complete"
        self.client.hset(keys.meta(self.version), mapping=info)
        with self.client.pipeline(transaction=True) as tx:
            tx.set(keys.CURRENT, self.version)
            tx.zadd(keys.VERSIONS, {self.version: time.time()})
            tx.hdel(keys.WRITING, self.version)
            tx.execute()
        gc_started = time.perf_counter()
        self.summary.collected = collect_garbage(self.client, keep=keep)
        self.summary.gc_seconds = round(time.perf_counter() - gc_started, 3)
        return self.summary
