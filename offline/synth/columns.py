"""Rows as columns: a dict of equally long numpy arrays (one generation of a cascade, a day of
events), with the few operations the day loop needs on them."""

from __future__ import annotations

from typing import Any

import numpy as np

Cols = dict[str, np.ndarray]
EXPOSURE_DTYPES = {
    "rumor": np.int32,
    "user": np.int64,
    "item": np.int64,
    "ts": np.int64,
    "surface": np.int8,
    "action": np.int8,
    "forced": np.bool_,
}
EVENT_DTYPES = {
    "user": np.int64,
    "debunk": np.int64,
    "rumor": np.int32,
    "surface": np.int8,
    "event": np.int8,
    "ts": np.int64,
}


def select(cols: Cols, idx: np.ndarray) -> Cols:
    """The rows ``idx`` (indices or a mask) of every column."""
    return {k: v[idx] for k, v in cols.items()}


def concat(parts: list[Cols], dtypes: dict[str, Any]) -> Cols:
    """Concatenate column sets; empty ones typed by ``dtypes``."""
    parts = [p for p in parts if len(p["ts"])]
    if not parts:
        return {k: np.empty(0, dtype=t) for k, t in dtypes.items()}
    return {k: np.concatenate([p[k] for p in parts]) for k in dtypes}


def sort_by_ts(cols: Cols) -> Cols:
    """Rows in time order; ties keep their order, so the result is deterministic."""
    return select(cols, np.argsort(cols["ts"], kind="stable"))


def merge_by_ts(bg: Cols, rumor: Cols) -> Cols:
    """Insert time-sorted rumor rows into time-sorted background rows, keeping the order."""
    m = len(rumor["ts"])
    if not m:
        return bg
    pos = np.searchsorted(bg["ts"], rumor["ts"], side="right") + np.arange(m)
    is_rumor = np.zeros(len(bg["ts"]) + m, dtype=np.bool_)
    is_rumor[pos] = True
    out = {}
    for k in bg:
        col = np.empty(len(is_rumor), dtype=bg[k].dtype)
        col[~is_rumor] = bg[k]
        col[is_rumor] = rumor[k]
        out[k] = col
    return out
