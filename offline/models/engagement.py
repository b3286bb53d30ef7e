"""The exposure state as training reads it: a table in memory, or the nightly's state file
streamed a row group at a time with only the columns training needs, so a 40M-pair state is
never held as strings (decision 0061)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from domain.vocab import ACTION_STRENGTH

ENGAGEMENT_COLUMNS = ["user_id", "rumor_id", "exposures", "strongest_action"]
State = pa.Table | Path


@dataclass(frozen=True)
class Engagement:
    """users x rumors confidence (CSR, rows and columns in sorted id order); the users as one
    Arrow array (~13 bytes an id, not a Python str of ~60)."""

    users: pa.StringArray
    rumors: list[str]
    matrix: sp.csr_matrix


def state_rows(state: State | None) -> int:
    """Pairs in the state (a file's from its footer, nothing read)."""
    if state is None:
        return 0
    if isinstance(state, pa.Table):
        return state.num_rows
    return pq.ParquetFile(state).metadata.num_rows


def state_batches(state: State, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The state's ``columns``, a row group (or a table chunk) at a time."""
    if isinstance(state, pa.Table):
        yield from state.select(columns).to_batches()
        return
    f = pq.ParquetFile(state)
    for g in range(f.num_row_groups):
        yield from f.read_row_group(g, columns=columns).to_batches()


def rows_of_users(state: State, user_ids: list[str], columns: list[str]) -> pa.Table:
    """The state's rows of these users only (the ranker's profile), read batch by batch."""
    wanted = pa.array(user_ids, pa.string())
    parts, schema = [], None
    for b in state_batches(state, columns):
        schema = b.schema
        kept = b.filter(pc.is_in(b["user_id"], wanted))
        if kept.num_rows:
            parts.append(kept)
    if schema is None:  # no rows at all
        schema = pa.schema([_schema(state).field(c) for c in columns])
    return pa.Table.from_batches(parts, schema=schema)


def _schema(state: State) -> pa.Schema:
    return state.schema if isinstance(state, pa.Table) else pq.read_schema(state)


def engagement(state: State, alpha: float) -> Engagement:
    """The confidence matrix of the state: streamed when its users come in order (the state
    file is sorted by user), else read whole with the four columns only."""
    built = _engagement_in_user_order(state, alpha)
    return built if built is not None else _engagement_any_order(state, alpha)


def _engagement_in_user_order(state: State, alpha: float) -> Engagement | None:
    """One pass; None at the first user out of order. Holds the distinct users, one int32 and
    one float32 per pair, and the rumors."""
    total = state_rows(state)
    indices = np.empty(total, dtype=np.int32)  # written in place: no per-batch parts to free
    values = np.empty(total, dtype=np.float32)
    users: list[pa.Array] = []
    counts: list[np.ndarray] = []
    rumor_code: dict[str, int] = {}
    last: str | None = None
    carry = 0  # rows so far of the last user seen (its count is known when the next begins)
    at = 0
    for b in state_batches(state, ENGAGEMENT_COLUMNS):
        if b.num_rows == 0:
            continue
        u = b["user_id"]
        if u.null_count or pc.all(pc.less_equal(u[:-1], u[1:])).as_py() not in (True, None):
            return None
        first = u[0].as_py()
        if last is not None and first < last:
            return None
        new = np.empty(len(u), dtype=bool)
        new[0] = first != last
        new[1:] = pc.not_equal(u[1:], u[:-1]).to_numpy(zero_copy_only=False)
        per = np.bincount(np.cumsum(new))  # [0]: rows of the previous batch's last user
        carry += int(per[0])
        if len(per) > 1:  # the batch starts users: the carried one is complete
            done = [carry] if last is not None else []
            counts.append(np.array([*done, *per[1:-1]], dtype=np.int64))
            carry = int(per[-1])
        users.append(u.filter(pa.array(new)))
        indices[at : at + b.num_rows] = _rumor_codes(b["rumor_id"], rumor_code)
        values[at : at + b.num_rows] = confidence(b, alpha)
        at += b.num_rows
        last = u[-1].as_py()
    if last is not None:
        counts.append(np.array([carry], dtype=np.int64))
    return _assemble(users, counts, indices[:at], values[:at], rumor_code)


def _rumor_codes(rumors: pa.Array, codes: dict[str, int]) -> np.ndarray:
    """Provisional (first-seen) rumor codes of a batch, ``codes`` extended in place."""
    enc = pc.dictionary_encode(rumors)
    local = np.array([codes.setdefault(r, len(codes)) for r in enc.dictionary.to_pylist()],
                     dtype=np.int32)  # fmt: skip
    return local[enc.indices.to_numpy(zero_copy_only=False)]


def _assemble(
    users: list[pa.Array],
    counts: list[np.ndarray],
    indices: np.ndarray,
    values: np.ndarray,
    rumor_code: dict[str, int],
) -> Engagement:
    """CSR from the streamed parts, rumor codes renumbered in sorted id order in place."""
    names = sorted(rumor_code)
    rank = np.empty(len(names), dtype=np.int32)
    for i, r in enumerate(names):
        rank[rumor_code[r]] = i
    for lo in range(0, len(indices), 1 << 20):
        indices[lo : lo + (1 << 20)] = rank[indices[lo : lo + (1 << 20)]]
    counts_all = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    indptr = np.zeros(len(counts_all) + 1, dtype=np.int64)
    np.cumsum(counts_all, out=indptr[1:])
    ids = (
        pa.chunked_array(users, pa.string()).combine_chunks()
        if users
        else pa.array([], pa.string())
    )
    m = sp.csr_matrix((values, indices, indptr), shape=(len(ids), len(names)))
    m.sum_duplicates()
    return Engagement(ids, names, m)


def _engagement_any_order(state: State, alpha: float) -> Engagement:
    """Users in any order: the four columns read whole, ids coded by sorted rank."""
    t = pa.Table.from_batches(list(state_batches(state, ENGAGEMENT_COLUMNS)),
                              schema=pa.schema([_schema(state).field(c)
                                                for c in ENGAGEMENT_COLUMNS]))  # fmt: skip
    users = pc.unique(t["user_id"]).sort()
    rumors = pc.unique(t["rumor_id"]).sort()
    ucode = pc.index_in(t["user_id"], users).to_numpy().astype(np.int64)
    rcode = pc.index_in(t["rumor_id"], rumors).to_numpy().astype(np.int64)
    conf = np.concatenate([confidence(b, alpha) for b in t.to_batches()]) \
        if t.num_rows else np.zeros(0, np.float32)  # fmt: skip
    m = sp.csr_matrix((conf, (ucode, rcode)), shape=(len(users), len(rumors)))
    m.sum_duplicates()
    return Engagement(users.combine_chunks() if isinstance(users, pa.ChunkedArray) else users,
                      rumors.to_pylist(), m)  # fmt: skip


def strengths(actions: pa.Array) -> np.ndarray:
    """Action names (or codes) as strengths 0..4; unknown names 0."""
    if pa.types.is_integer(actions.type):
        return actions.to_numpy(zero_copy_only=False).astype(np.float32)
    enc = (
        pc.dictionary_encode(actions.cast(pa.string())).combine_chunks()
        if isinstance(actions, pa.ChunkedArray)
        else pc.dictionary_encode(actions.cast(pa.string()))
    )
    table = np.array([ACTION_STRENGTH.get(a, 0) for a in enc.dictionary.to_pylist()], np.float32)
    codes = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return table[codes] if len(table) else np.zeros(len(actions), np.float32)


def confidence(batch: pa.RecordBatch, alpha: float) -> np.ndarray:
    """1 + alpha x (log1p(exposures) + strongest action strength / 4), per row."""
    n = batch["exposures"].to_numpy(zero_copy_only=False).astype(np.float32)
    s = strengths(batch["strongest_action"])
    return (1.0 + alpha * (np.log1p(n) + s / 4.0)).astype(np.float32)
