"""Learned-model artifacts as the snapshot stores them: float32 factor blobs and their codecs.

A score is one dot product: user rows are ``[bias, 1, factors...]`` and debunk rows
``[1, bias, factors...]``, so ``user @ debunk`` is the ranker's logit. No model library needed.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FORMAT_VERSION = 1
MAX_PREBUNKS = 3  # rumors kept per user (the service shows at most one)
# Debunk options per rumor whose logits are precomputed (codecs v2, PairScorer, pack_logits).
OPTION_SLOTS = 4


@dataclass(frozen=True)
class FeedModel:
    """The debunk side of the ranker for one snapshot: one row per debunk, plus cold users."""

    debunk_row: dict[str, int]
    factors: np.ndarray  # float32 (debunks, dim)
    default_user: np.ndarray  # float32 (dim,): users the ranker never saw
    weight: float = 0.9  # how much the model orders cards within one exposure strength
    meta: dict[str, Any] = field(default_factory=dict)
    # key -> (the option list it was built for, its factor rows, which options the model knows)
    _options: dict[str, tuple[Sequence[Any], list[int], tuple[bool, ...]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def user_vector(self, user: np.ndarray | None) -> np.ndarray:
        """The user's factor row, or the cold-user row when there is none (or it is stale)."""
        return self.default_user if user is None or len(user) != self.factors.shape[1] else user

    def option_rows(self, key: str, options: Sequence[Any]) -> tuple[list[int], tuple[bool, ...]]:
        """Factor rows of a fixed list of debunks (objects with ``debunk_id``, e.g. one rumor's)
        and which of them the model knows; looked up once and kept under ``key`` while the list
        object is the same."""
        cached = self._options.get(key)
        if cached is None or cached[0] is not options:
            rows = [self.debunk_row.get(d.debunk_id, -1) for d in options]
            cached = self._options[key] = (options, [max(r, 0) for r in rows],
                                           tuple(r >= 0 for r in rows))  # fmt: skip
        return cached[1], cached[2]

    def row_logits(self, rows: list[int], user: np.ndarray) -> list[float]:
        """The logits of factor ``rows`` for the user row ``user``: one matrix product."""
        # take + dot: a quarter of the cost of fancy indexing with a list, for a few rows.
        return np.dot(self.factors.take(rows, axis=0), user).tolist() if rows else []

    def logits(self, user: np.ndarray | None, debunk_ids: list[str]) -> np.ndarray:
        """The ranker's logit for each debunk (NaN for a debunk the model does not know)."""
        return np.array(self.logit_list(user, debunk_ids), dtype=np.float64)

    def logit_list(self, user: np.ndarray | None, debunk_ids: list[str]) -> list[float]:
        """``logits`` as a plain list: one matrix product, no per-item numpy (the hot path)."""
        if not debunk_ids:
            return []
        vec = self.user_vector(user)
        rows = [self.debunk_row.get(d, -1) for d in debunk_ids]
        scores = (self.factors[[max(r, 0) for r in rows]] @ vec).tolist()
        return [v if r >= 0 else math.nan for v, r in zip(scores, rows, strict=True)]


class PairScorer:
    """The ranker's logits for (user, rumor) pairs at materialization: each pair gets the logit
    of every debunk option of its rumor (in catalog order, up to ``slots``), so that serving
    picks a user's debunk without a matrix product (see ExposureState.logits). Users without
    factors (or with stale ones) get the cold-user row, as online."""

    def __init__(
        self,
        model: FeedModel,
        user_factors: dict[str, np.ndarray],
        options: dict[str, list[str]],
        *,
        slots: int = 4,
        chunk: int = 1 << 16,
    ) -> None:
        dim = model.factors.shape[1]
        users = list(user_factors)
        self.model, self.slots, self.chunk = model, slots, chunk
        self.users = pa.array(users, pa.string())
        self.user_rows = np.empty((len(users) + 1, dim), dtype=np.float32)
        self.user_rows[0] = model.default_user  # row 0: the cold user
        for i, user in enumerate(users, 1):
            self.user_rows[i] = model.user_vector(user_factors[user])
        rumors = sorted(options)
        self.rumors = pa.array(rumors, pa.string())
        # Per rumor: factor rows of its options (-1: unknown to the model or beyond the slots),
        # and how many options it has (0 when more than ``slots``: left to serving).
        self.option_rows = np.full((len(rumors) + 1, slots), -1, dtype=np.int64)
        self.counts = np.zeros(len(rumors) + 1, dtype=np.uint8)
        for j, rumor in enumerate(rumors):
            ids = options[rumor]
            if 0 < len(ids) <= slots:
                self.counts[j] = len(ids)
                self.option_rows[j, : len(ids)] = [model.debunk_row.get(d, -1) for d in ids]

    def score(self, users: pa.Array, rumors: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(counts, logits): per pair, how many options its rumor has (0: not precomputed) and
        their logits in ``slots`` float32 columns (NaN: no option, or unknown to the model)."""
        user_at = pc.fill_null(pc.index_in(users, value_set=self.users), -1)
        user_at = user_at.to_numpy(zero_copy_only=False).astype(np.int64) + 1
        rumor_at = pc.fill_null(pc.index_in(rumors, value_set=self.rumors), -1)
        rumor_at = rumor_at.to_numpy(zero_copy_only=False).astype(np.int64)  # -1: the empty row
        counts = self.counts[rumor_at]
        logits = np.full((len(user_at), self.slots), np.nan, dtype=np.float32)
        for start in range(0, len(user_at), self.chunk):
            end = start + self.chunk
            rows = self.option_rows[rumor_at[start:end]]
            known = rows >= 0
            debunks = self.model.factors[np.maximum(rows, 0)]  # (n, slots, dim)
            scores = np.einsum("nsd,nd->ns", debunks, self.user_rows[user_at[start:end]])
            logits[start:end] = np.where(known, scores, np.nan)
        return counts, logits


class UserModel(NamedTuple):
    """One user's side: ranker factors (None: use the default), at-risk rumors, best first, and
    (when the snapshot precomputed them) the ranker's option logits of each at-risk rumor.
    A named tuple: the service decodes one per user of every request."""

    factors: np.ndarray | None = None
    prebunks: tuple[tuple[str, float], ...] = ()
    prebunk_logits: tuple[tuple[float, ...], ...] = ()


EMPTY_USER = UserModel()


def encode_feed_model(model: FeedModel) -> dict[bytes, bytes]:
    """The fields of the ``keys.model`` hash."""
    meta = {**model.meta, "format_version": FORMAT_VERSION, "weight": model.weight}
    ids = sorted(model.debunk_row, key=model.debunk_row.__getitem__)
    return {
        b"meta": json.dumps(meta, sort_keys=True).encode(),
        b"debunks": "\n".join(ids).encode(),
        b"factors": np.ascontiguousarray(model.factors, dtype="<f4").tobytes(),
        b"default_user": np.ascontiguousarray(model.default_user, dtype="<f4").tobytes(),
    }


def decode_feed_model(raw: dict[bytes, bytes]) -> FeedModel | None:
    """The FeedModel from a ``keys.model`` hash (None when the snapshot has no model)."""
    if not raw or b"meta" not in raw:
        return None
    meta = json.loads(raw[b"meta"])
    if meta.get("format_version") != FORMAT_VERSION:
        return None
    ids = raw[b"debunks"].decode().split("\n") if raw.get(b"debunks") else []
    default = np.frombuffer(raw[b"default_user"], dtype="<f4")
    factors = np.frombuffer(raw[b"factors"], dtype="<f4").reshape(len(ids), len(default))
    return FeedModel(
        debunk_row={d: i for i, d in enumerate(ids)},
        factors=factors,
        default_user=default,
        weight=float(meta.get("weight", 0.9)),
        meta=meta,
    )


_LOGITS = struct.Struct(f"<B{OPTION_SLOTS}f")


def pack_logits(logits: list[float] | tuple[float, ...]) -> bytes:
    """One rumor's option logits in 17 bytes: how many, then OPTION_SLOTS float32 slots."""
    if len(logits) > OPTION_SLOTS:
        raise ValueError(f"at most {OPTION_SLOTS} option logits, got {len(logits)}")
    return _LOGITS.pack(len(logits), *logits, *([math.nan] * (OPTION_SLOTS - len(logits))))


def unpack_logits(raw: bytes) -> list[tuple[float, ...]]:
    """The logit tuples of consecutive pack_logits records."""
    if len(raw) % _LOGITS.size:
        raise ValueError("truncated option logits")
    return [tuple(rec[1 : 1 + rec[0]]) for rec in _LOGITS.iter_unpack(raw)]


def encode_prebunks(prebunks: list[tuple[str, float]]) -> bytes:
    """``rumor:score,rumor:score`` (best first)."""
    return ",".join(f"{r}:{s:.4f}" for r, s in prebunks[:MAX_PREBUNKS]).encode()


def decode_user_model(raw: dict[bytes, bytes]) -> UserModel:
    """A UserModel from a ``keys.user_model`` hash (empty for users without one)."""
    if not raw:
        return EMPTY_USER
    f = raw.get(b"f")
    factors = np.frombuffer(f, dtype="<f4") if f else None
    p = raw.get(b"p")
    if not p:
        return UserModel(factors)
    prebunks = []
    for part in p.decode().split(","):
        rumor, _, score = part.rpartition(":")
        if rumor:
            prebunks.append((rumor, float(score)))
    q = raw.get(b"q")
    logits = tuple(unpack_logits(q)) if q is not None else ()
    if len(logits) != len(prebunks):
        logits = ()  # written by another version of the writer: score them online
    return UserModel(factors, tuple(prebunks), logits)
