"""Byte encodings of the values stored in Redis: compact exposure state and catalog JSON."""

from __future__ import annotations

import json
import struct
from typing import Any

from feature_store.records import ExposureState

# codec version, exposures, first_ts, last_ts (unix seconds), strongest action, surface mask
_EXPOSURE = struct.Struct("<BIIIBB")
_EXPOSURE_V1 = 1


def pack_exposure(exposures: int, first_ts: int, last_ts: int, action: int, mask: int) -> bytes:
    """Pack one (user, rumor) exposure state into 15 bytes."""
    return _EXPOSURE.pack(_EXPOSURE_V1, min(exposures, 0xFFFFFFFF), first_ts, last_ts, action, mask)


def unpack_exposure(rumor_id: str, raw: bytes) -> ExposureState:
    """Decode bytes written by pack_exposure; raises ValueError on an unknown codec."""
    if len(raw) != _SIZE or raw[0] != _EXPOSURE_V1:
        raise ValueError(f"unknown exposure encoding for rumor {rumor_id!r}")
    return _make((rumor_id, *_unpack(raw)[1:]))


_SIZE = _EXPOSURE.size
_unpack = _EXPOSURE.unpack
_make = ExposureState._make


def dump_json(obj: dict[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the same object always gives the same bytes."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def load_json(raw: bytes | str) -> dict[str, Any]:
    """Decode JSON written by dump_json."""
    return json.loads(raw)
