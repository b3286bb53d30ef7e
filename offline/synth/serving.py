"""The platform's debunk serving, with the planted preferences: exposed users of confirmed
rumors are served one of the rumor's published debunks, and click far more often on their
preferred format and (when trusting) on official sources: what a ranker should recover."""

from __future__ import annotations

import numpy as np

from domain.vocab import AUTHORITIES, DEBUNK_EVENTS, SURFACES
from offline.synth.columns import EVENT_DTYPES, Cols, concat, select
from offline.synth.library import Library
from offline.synth.population import Users
from offline.synth.streams import LUT_SIZE, Stream, lut, stream
from offline.synth.timeline import HOUR_US, SECOND_US

SERVE_P = 0.8
SERVE_DELAY_H = 2.0
SERVE_SURFACE_P = {"feed": 0.6, "comment": 0.15, "search": 0.1, "group": 0.15}
IMPRESSION_P = 0.85
CLICK_BASE = 0.03
CLICK_PREFERRED_FORMAT = 0.20
CLICK_TRUSTED_OFFICIAL = 0.12
DISMISS_P = 0.35
DISMISS_PREFERRED_P = 0.15
SHARE_AFTER_CLICK_P = 0.15
MORE_CARDS_DELAY_H = 12.0  # with cards > 1: later cards of the same rumor come hours apart
OFFICIAL = AUTHORITIES.index("official")
EVENT = {e: i for i, e in enumerate(DEBUNK_EVENTS)}

_SERVE_SURFACE = lut(SERVE_SURFACE_P, SURFACES)


def serve(
    day: int,
    rows: Cols,
    lib: Library,
    users: Users,
    handled: np.ndarray,
    seed: int,
    window_end: int,
    serve_p: np.ndarray | None = None,
    cards: int = 1,
) -> tuple[Cols, np.ndarray]:
    """Serve debunk cards to exposed users of confirmed rumors (``cards`` distinct debunks per
    user and rumor at most, the first after the rumor's first debunk is out), and play out
    impression, click, dismiss and share."""
    rng = stream(seed, Stream.SERVE, day)
    conf = np.flatnonzero(lib.confirmed[rows["rumor"]])
    keys = rows["user"][conf] * max(lib.n, 1) + rows["rumor"][conf]
    keys, first = np.unique(keys, return_index=True)
    new = ~np.isin(keys, handled, assume_unique=True)
    handled = np.union1d(handled, keys)
    idx = conf[first[new]]
    p = SERVE_P if serve_p is None else serve_p[rows["user"][idx]]
    idx = idx[rng.random(len(idx)) < p]
    n = len(idx)
    user, rumor = rows["user"][idx], rows["rumor"][idx]
    wait = (rng.exponential(SERVE_DELAY_H, n) * HOUR_US).astype(np.int64) + 60 * SECOND_US
    served_ts = np.maximum(rows["ts"][idx], lib.pub[rumor, 0]) + wait
    available = (lib.pub[rumor] <= served_ts[:, None]).sum(axis=1)
    k = np.minimum((rng.random(n) * available).astype(np.int64), np.maximum(available - 1, 0))
    if cards > 1:
        user, rumor, k, served_ts = more_cards(
            stream(seed, Stream.SERVE_MORE, day), lib, user, rumor, k, served_ts, cards
        )
        n = len(user)
    fmt, authority = lib.debunk_format[rumor, k], lib.debunk_authority[rumor, k]
    preferred = fmt == users.pref_format[user]
    official = authority == OFFICIAL
    trusts = users.trusts[user]
    p_click = CLICK_BASE + CLICK_PREFERRED_FORMAT * preferred
    p_click = p_click + CLICK_TRUSTED_OFFICIAL * (official & trusts)
    p_click = np.where(official & ~trusts, p_click * 0.5, p_click)
    p_dismiss = np.where(preferred, DISMISS_PREFERRED_P, DISMISS_P)
    seen = rng.random(n) < IMPRESSION_P
    u = rng.random(n)
    click = seen & (u < p_click)
    dismiss = seen & ~click & (u < p_click + p_dismiss)
    share = click & (rng.random(n) < SHARE_AFTER_CLICK_P)
    imp_ts = served_ts + (rng.uniform(1, 30, n) * SECOND_US).astype(np.int64)
    click_ts = imp_ts + (rng.uniform(2, 90, n) * SECOND_US).astype(np.int64)
    dismiss_ts = imp_ts + (rng.uniform(1, 20, n) * SECOND_US).astype(np.int64)
    share_ts = click_ts + (rng.uniform(10, 600, n) * SECOND_US).astype(np.int64)
    card = {
        "user": user,
        "debunk": lib.debunk[rumor, k],
        "rumor": rumor,
        "surface": _SERVE_SURFACE[rng.integers(0, LUT_SIZE, n)],
    }
    parts = []
    for name, mask, ts in (
        ("served", np.ones(n, dtype=np.bool_), served_ts),
        ("impression", seen, imp_ts),
        ("click", click, click_ts),
        ("dismiss", dismiss, dismiss_ts),
        ("share", share, share_ts),
    ):
        part = select({**card, "ts": ts}, mask & (ts < window_end))
        part["event"] = np.full(len(part["ts"]), EVENT[name], dtype=np.int8)
        parts.append(part)
    return concat(parts, EVENT_DTYPES), handled


def more_cards(
    rng: np.random.Generator,
    lib: Library,
    user: np.ndarray,
    rumor: np.ndarray,
    k: np.ndarray,
    served_ts: np.ndarray,
    cards: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``cards - 1`` further distinct debunks of the same rumor, each hours after the
    previous card, chosen at random among those published by then; appended after the first."""
    used = np.zeros((len(k), lib.pub.shape[1]), dtype=np.bool_)
    used[np.arange(len(k)), k] = True
    parts = [(user, rumor, k, served_ts)]
    ts = served_ts
    for _ in range(cards - 1):
        ts = ts + (rng.exponential(MORE_CARDS_DELAY_H, len(ts)) * HOUR_US).astype(np.int64)
        key = rng.random(used.shape)
        key[used | (lib.pub[rumor] > ts[:, None])] = np.inf
        pick = key.argmin(axis=1)
        ok = np.isfinite(key[np.arange(len(pick)), pick])
        used[np.arange(len(pick)), pick] |= ok
        parts.append((user[ok], rumor[ok], pick[ok], ts[ok]))
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))  # type: ignore[return-value]
