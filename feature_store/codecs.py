"""Byte encodings of the values stored in Redis: compact exposure state and catalog JSON."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from domain.models import OPTION_SLOTS
from domain.records import ExposureState

# codec version, exposures, first_ts, last_ts (unix seconds), strongest action, surface mask
_EXPOSURE = struct.Struct("<BIIIBB")
_EXPOSURE_V1 = 1
# v2 adds the ranker's logits of the rumor's first debunk options (see ExposureState.logits):
# how many (0..OPTION_SLOTS), then OPTION_SLOTS float32 slots.
_SCORED = struct.Struct(f"<BIIIBBB{OPTION_SLOTS}f")
_EXPOSURE_V2 = 2
# The tag score (ExposureState.tag_score) rides as one trailing byte, round(score * 255), after
# any exposure value (codec 1: 16 bytes, codec 2: 33, live: 24); it is left off when it is 255
# (a hand tag's 1.0), so such values keep their old bytes and an old value reads as 1.0.
TAG_SCORE_STEPS = 255
_TAG_SCORES = tuple(q / TAG_SCORE_STEPS for q in range(TAG_SCORE_STEPS + 1))


def tag_score_byte(score: float) -> int:
    """A tag score in [0, 1] (clipped; NaN counts as 1.0) as its trailing byte 0..255."""
    if not score >= 0.0:
        return TAG_SCORE_STEPS if math.isnan(score) else 0
    return round(min(score, 1.0) * TAG_SCORE_STEPS)


def _score_tail(score: float) -> bytes:
    """The trailing tag-score byte of a value, or nothing for a score of 1.0."""
    q = tag_score_byte(score)
    return b"" if q == TAG_SCORE_STEPS else bytes((q,))


def _tag_score(raw: bytes, size: int) -> float:
    """The tag score of a value whose fixed part is ``size`` bytes (1.0 without the byte)."""
    return _TAG_SCORES[raw[size]] if len(raw) > size else 1.0


def pack_exposure(
    exposures: int,
    first_ts: int,
    last_ts: int,
    action: int,
    mask: int,
    logits: tuple[float, ...] = (),
    tag_score: float = 1.0,
) -> bytes:
    """Pack one (user, rumor) exposure state: 15 bytes, or 32 with precomputed option logits;
    one byte more when ``tag_score`` is below 1.0."""
    n = min(exposures, 0xFFFFFFFF)
    tail = _score_tail(tag_score)
    if not logits:
        return _EXPOSURE.pack(_EXPOSURE_V1, n, first_ts, last_ts, action, mask) + tail
    if len(logits) > OPTION_SLOTS:
        raise ValueError(f"at most {OPTION_SLOTS} option logits, got {len(logits)}")
    slots = (*logits, *([math.nan] * (OPTION_SLOTS - len(logits))))
    packed = _SCORED.pack(_EXPOSURE_V2, n, first_ts, last_ts, action, mask, len(logits), *slots)
    return packed + tail


def unpack_exposure(rumor_id: str, raw: bytes) -> ExposureState:
    """Decode bytes written by pack_exposure; raises ValueError on an unknown codec."""
    size = len(raw)
    if (size == _SCORED_SIZE or size == _SCORED_SIZE + 1) and raw[0] == _EXPOSURE_V2:
        t = _unpack_scored(raw)  # (codec, n, first, last, action, mask, k, *slots)
        score = _tag_score(raw, _SCORED_SIZE)
        return _make((rumor_id, t[1], t[2], t[3], t[4], t[5], t[7 : 7 + t[6]], score))
    if (size == _SIZE or size == _SIZE + 1) and raw[0] == _EXPOSURE_V1:
        return _make((rumor_id, *_unpack(raw)[1:], (), _tag_score(raw, _SIZE)))
    raise ValueError(f"unknown exposure encoding for rumor {rumor_id!r}")


_SIZE, _SCORED_SIZE = _EXPOSURE.size, _SCORED.size
_unpack, _unpack_scored = _EXPOSURE.unpack_from, _SCORED.unpack_from
_make = ExposureState._make

try:  # built at install (setup.py); without it ``unpack_exposures`` decodes in Python
    from feature_store import _expdecode
except ImportError:  # pragma: no cover - no C compiler at install
    _expdecode = None


def unpack_exposures(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """A user's exposure hash as HGETALL returns it, decoded (``unpack_exposure`` of every
    field, in the hash's order); in C when it is built (the same states, the same errors)."""
    if _expdecode is not None and type(raw) is dict:
        return _expdecode.decode(raw, ExposureState)
    return unpack_exposures_python(raw)


def unpack_exposures_python(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """``unpack_exposures`` in Python (the C decoder's reference)."""
    return [unpack_exposure(k.decode(), v) for k, v in raw.items()]


def dump_json(obj: dict[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the same object always gives the same bytes."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def load_json(raw: bytes | str) -> dict[str, Any]:
    """Decode JSON written by dump_json."""
    return json.loads(raw)


# A live (backfilled) exposure state: the codec-1 state, then the unix milliseconds it is as of
# (then the state's tag-score byte, when below 1.0).
_LIVE_STAMP = struct.Struct("<Q")
LIVE_SIZE = _SIZE + _LIVE_STAMP.size


def pack_live_exposure(state: bytes, as_of_ms: int) -> bytes:
    """A live exposure value: a codec-1 state (pack_exposure, 15 bytes or 16 with its tag
    score) and its as-of stamp, the tag-score byte moved to the end."""
    if len(state) not in (_SIZE, _SIZE + 1) or state[0] != _EXPOSURE_V1:
        raise ValueError("a live exposure carries a codec-1 exposure state")
    return state[:_SIZE] + _LIVE_STAMP.pack(as_of_ms) + state[_SIZE:]


def unpack_live_exposure(rumor_id: str, raw: bytes) -> tuple[ExposureState, int]:
    """Decode a pack_live_exposure value into (state, as-of unix milliseconds)."""
    if len(raw) not in (LIVE_SIZE, LIVE_SIZE + 1) or raw[0] != _EXPOSURE_V1:
        raise ValueError(f"unknown live exposure encoding for rumor {rumor_id!r}")
    state = _make((rumor_id, *_unpack(raw)[1:], (), _tag_score(raw, LIVE_SIZE)))
    return state, _LIVE_STAMP.unpack_from(raw, _SIZE)[0]


def encode_item_scores(scores: dict[str, dict[str, float]]) -> dict[str, str]:
    """Item -> ``rumor=score`` pairs joined by commas, for the snapshot's item-scores hash."""
    return {item: ",".join(f"{r}={s:.6g}" for r, s in sorted(by.items()))
            for item, by in scores.items() if by}  # fmt: skip


def decode_item_scores(raw: dict[bytes, bytes]) -> dict[tuple[str, str], float]:
    """The item-scores hash as HGETALL returns it: (item, rumor) -> score (bad pairs skipped)."""
    out: dict[tuple[str, str], float] = {}
    for item, value in raw.items():
        for pair in value.decode().split(","):
            rumor, _, score = pair.rpartition("=")  # a rumor id may hold "="
            try:
                out[(item.decode(), rumor)] = min(max(float(score), 0.0), 1.0)
            except ValueError:
                continue
    return out
