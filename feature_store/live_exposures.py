"""Writes of the live exposure layer: backfilled (user, rumor) exposure states outside snapshots.

A backfill (offline.nightly.backfill) computes each exposed user's state for one rumor over the
lookback window; this module puts them under ``keys.live_exposures(user)`` as rumor_id -> the
codec-1 state, its as-of stamp and its tag-score byte (codecs.pack_live_exposure), with a
TTL of the lookback window. HSET replaces a field, so a re-run writes the same values again,
never a sum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
import redis.cluster

from domain.ids import ID_PATTERN
from feature_store import keys
from feature_store.bulk import BulkConnection
from feature_store.codecs import LIVE_SIZE
from feature_store.members import announce
from feature_store.snapshots import pack_state_rows, tag_score_bytes, with_tag_scores
from feature_store.transport.encoding import encode, hset_payload

DAY_S = 86_400


@dataclass
class LiveWriteSummary:
    """What one write of live exposures did."""

    users: int = 0
    pairs: int = 0
    skipped_invalid_ids: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def live_values(state: pa.Table, as_of_ms: int) -> pa.Array:
    """Each row of an exposure-state table as a live value (23 bytes, 24 with a tag score
    below 1.0), vectorised."""
    if not state.num_rows:
        return pa.array([], pa.binary(LIVE_SIZE))
    batch = state.combine_chunks().to_batches()[0]
    packed = pack_state_rows(batch)
    raw = np.frombuffer(packed.tobytes(), dtype=np.uint8).reshape(-1, packed.dtype.itemsize)
    stamp = np.full(len(raw), as_of_ms, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return with_tag_scores(np.hstack([raw, stamp]), tag_score_bytes(batch))


def write_live_exposures(
    client: redis.Redis,
    state: pa.Table,
    *,
    as_of_ms: int,
    ttl_s: int = 30 * DAY_S,
    chunk_pairs: int = 50_000,
) -> LiveWriteSummary:
    """Write every row of ``state`` (exposure-state columns, any order) into its user's live
    exposure hash and set that hash's TTL to ``ttl_s``; rows whose ids may not name a key are
    skipped and counted. One bulk connection on one Redis, a pipeline on a cluster."""
    started = time.perf_counter()
    summary = LiveWriteSummary()
    table = state.sort_by([("user_id", "ascending"), ("rumor_id", "ascending")])
    ok = pc.and_(
        pc.match_substring_regex(table["user_id"], ID_PATTERN),
        pc.match_substring_regex(table["rumor_id"], ID_PATTERN),
    )
    valid = table.filter(pc.fill_null(ok, False)).combine_chunks()
    summary.skipped_invalid_ids = table.num_rows - valid.num_rows
    if valid.num_rows:
        users = valid["user_id"].combine_chunks()
        fields = valid["rumor_id"].combine_chunks()
        values = live_values(valid, as_of_ms)
        announce(client, pc.unique(users).to_pylist(), ttl_s)  # before the rows: see members
        if isinstance(client, redis.cluster.RedisCluster):
            _write_pipelined(client, users, fields, values, ttl_s)
        else:
            _write_bulk(client, users, fields, values, ttl_s, chunk_pairs)
        summary.users = pc.count_distinct(users).as_py()
        summary.pairs = valid.num_rows
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _write_bulk(
    client: redis.Redis,
    users: pa.Array,
    fields: pa.Array,
    values: pa.Array,
    ttl_s: int,
    chunk_pairs: int,
) -> None:
    """HSETs and EXPIREs as raw RESP chunks on one connection (never splitting a user)."""
    bulk = BulkConnection(client)
    prefix, n, start = keys.live_exposures_prefix(), len(users), 0
    while start < n:
        stop = min(start + chunk_pairs, n)
        while stop < n and users[stop] == users[stop - 1]:
            stop += 1
        payload, count = hset_payload(prefix, users[start:stop], fields[start:stop],
                                      values[start:stop])  # fmt: skip
        bulk.send(payload, count)
        distinct = pc.unique(users[start:stop]).to_pylist()
        expires = [(b"EXPIRE", keys.live_exposures(u), str(ttl_s)) for u in distinct]
        bulk.send(encode(expires), len(expires))
        start = stop
    bulk.finish()


def _write_pipelined(
    client: redis.Redis, users: pa.Array, fields: pa.Array, values: pa.Array, ttl_s: int
) -> None:
    """The generic path (Redis Cluster): one HSET and one EXPIRE per user, pipelined."""
    by_user: dict[str, list[bytes | str]] = {}
    for user, rumor, value in zip(
        users.to_pylist(), fields.to_pylist(), values.to_pylist(), strict=True
    ):
        by_user.setdefault(user, []).extend((rumor, value))
    pipe = client.pipeline(transaction=False)
    for n, (user, fv) in enumerate(by_user.items(), 1):
        key = keys.live_exposures(user)
        pipe.execute_command("HSET", key, *fv)
        pipe.expire(key, ttl_s)
        if n % 2000 == 0:
            pipe.execute()
    pipe.execute()
