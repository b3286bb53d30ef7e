"""A user's store replies decoded into feed views: the snapshot's exposure states, the live
layers over them (backfill, then the live days from the watermark on), delivery state and the
model side (split from ``feature_store.reader``, which issues the reads)."""

from __future__ import annotations

from domain.delivery import Delivery
from domain.exposure_days import LiveDay, add_days
from domain.exposure_layers import LiveEntry, merge_layers
from domain.models import UserModel
from domain.records import ExposureState
from feature_store.codecs import unpack_exposures, unpack_live_exposure
from feature_store.delivery import decode
from feature_store.live_ingest import decode_day
from feature_store.models import decode_user_model
from feature_store.row_cache import Rows

FeedView = tuple[list[ExposureState], Delivery, UserModel]


def decode_views(raw: list) -> list[FeedView]:
    """Per user: exposures, delivery (with today's served count) and model side."""
    return [
        (decode_exposures(raw[i]), decode(raw[i + 1], raw[i + 2]), decode_user_model(raw[i + 3]))
        for i in range(0, len(raw), 4)
    ]


def decode_live_views(
    raw: list, as_of: int, days: tuple[LiveDay, ...]
) -> tuple[list[FeedView], list[Rows]]:
    """decode_views of 5 + len(``days``) replies per user: the backfilled states merged over
    the snapshot's, then the live buckets from the watermark on added; beside them each user's
    snapshot rows as decoded (what ``SnapshotRows`` keeps)."""
    per = 5 + len(days)
    views: list[FeedView] = []
    snapshot_rows: list[Rows] = []
    for i in range(0, len(raw), per):
        states, model = decode_exposures(raw[i]), decode_user_model(raw[i + 3])
        live = layered(states, raw[i + 4], raw[i + 5 : i + per], as_of, days)
        views.append((live, decode(raw[i + 1], raw[i + 2]), model))
        snapshot_rows.append((states, model))
    return views, snapshot_rows


def layered(
    states: list[ExposureState], backfill: dict, day_replies: list, as_of: int,
    days: tuple[LiveDay, ...],
) -> list[ExposureState]:  # fmt: skip
    """One user's exposure states: the snapshot's, the backfill's over them, the live days
    added. Empty live replies cost a truth test each (most users have no live rows)."""
    if backfill:
        states = merge_layers(states, decode_live(backfill), as_of)
    if not days:
        return states
    parts = decoded_days(day_replies, days)
    return add_days(states, parts) if parts else states


def decoded_days(replies: list, days: tuple[LiveDay, ...]) -> list[dict[str, ExposureState]]:
    """The HGETALL replies of ``days``' hashes as rumor -> partial, each from its first hour."""
    return [decode_day(r, hour) for r, (_, hour) in zip(replies, days, strict=True) if r]


def decode_live(raw: dict[bytes, bytes]) -> dict[str, LiveEntry]:
    """Decode a user's live exposure hash as HGETALL returns it: rumor_id -> (state, as-of)."""
    return {k.decode(): unpack_live_exposure(k.decode(), v) for k, v in raw.items()}


def decode_exposures(raw: dict[bytes, bytes]) -> list[ExposureState]:
    """Decode a user's exposure hash as HGETALL returns it."""
    return unpack_exposures(raw)
