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


def pack_exposure(
    exposures: int,
    first_ts: int,
    last_ts: int,
    action: int,
    mask: int,
    logits: tuple[float, ...] = (),
) -> bytes:
    """Pack one (user, rumor) exposure state: 15 bytes, or 32 with precomputed option logits."""
    n = min(exposures, 0xFFFFFFFF)
    if not logits:
        return _EXPOSURE.pack(_EXPOSURE_V1, n, first_ts, last_ts, action, mask)
    if len(logits) > OPTION_SLOTS:
        raise ValueError(f"at most {OPTION_SLOTS} option logits, got {len(logits)}")
    slots = (*logits, *([math.nan] * (OPTION_SLOTS - len(logits))))
    return _SCORED.pack(_EXPOSURE_V2, n, first_ts, last_ts, action, mask, len(logits), *slots)


def unpack_exposure(rumor_id: str, raw: bytes) -> ExposureState:
    """Decode bytes written by pack_exposure; raises ValueError on an unknown codec."""
    if len(raw) == _SCORED_SIZE and raw[0] == _EXPOSURE_V2:
        t = _unpack_scored(raw)  # (codec, n, first, last, action, mask, k, *slots)
        return _make((rumor_id, t[1], t[2], t[3], t[4], t[5], t[7 : 7 + t[6]]))
    if len(raw) == _SIZE and raw[0] == _EXPOSURE_V1:
        return _make((rumor_id, *_unpack(raw)[1:], ()))
    raise ValueError(f"unknown exposure encoding for rumor {rumor_id!r}")


_SIZE, _SCORED_SIZE = _EXPOSURE.size, _SCORED.size
_unpack, _unpack_scored = _EXPOSURE.unpack, _SCORED.unpack
_make = ExposureState._make


def dump_json(obj: dict[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the same object always gives the same bytes."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def load_json(raw: bytes | str) -> dict[str, Any]:
    """Decode JSON written by dump_json."""
    return json.loads(raw)


# A live (backfilled) exposure state: the codec-1 state, then the unix milliseconds it is as of.
_LIVE_STAMP = struct.Struct("<Q")
LIVE_SIZE = _SIZE + _LIVE_STAMP.size


def pack_live_exposure(state: bytes, as_of_ms: int) -> bytes:
    """A live exposure value: a 15-byte codec-1 state (pack_exposure) and its as-of stamp."""
    if len(state) != _SIZE or state[0] != _EXPOSURE_V1:
        raise ValueError("a live exposure carries a codec-1 exposure state")
    return state + _LIVE_STAMP.pack(as_of_ms)


def unpack_live_exposure(rumor_id: str, raw: bytes) -> tuple[ExposureState, int]:
    """Decode a pack_live_exposure value into (state, as-of unix milliseconds)."""
    if len(raw) != LIVE_SIZE or raw[0] != _EXPOSURE_V1:
        raise ValueError(f"unknown live exposure encoding for rumor {rumor_id!r}")
    return _make((rumor_id, *_unpack(raw[:_SIZE])[1:], ())), _LIVE_STAMP.unpack(raw[_SIZE:])[0]
