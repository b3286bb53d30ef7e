"""Learned-model artifacts as the snapshot stores them: float32 factor blobs and their codecs,
and the pair scorer that precomputes option logits at materialization."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from domain.models import EMPTY_USER, MAX_PREBUNKS, OPTION_SLOTS, FeedModel, UserModel

FORMAT_VERSION = 1


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
