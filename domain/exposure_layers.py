"""How a user's live (backfilled) exposure states combine with the pinned snapshot's.

A backfill computes a (user, rumor) state over the whole lookback window and every item the
rumor carries, exactly as the next nightly will; it is stamped with the time it read the tags.
A snapshot is stamped with the time its nightly read the tags (``tags_as_of``). So the two are
never added: per (user, rumor) the newer one is the whole truth. A live entry newer than the
snapshot replaces the snapshot's state (or adds the pair when the snapshot has none); one not
newer is ignored, because that nightly already folded the tag in. No double count either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.records import ExposureState

# A live entry: the exposure state and the unix milliseconds it is as of.
LiveEntry = tuple[ExposureState, int]


def live_wins(live_as_of_ms: int, snapshot_as_of_ms: int) -> bool:
    """Whether a live entry stamped ``live_as_of_ms`` supersedes a snapshot stamped
    ``snapshot_as_of_ms``: strictly newer only (a tie means the nightly saw the same tags)."""
    return live_as_of_ms > snapshot_as_of_ms


def merge_layers(
    snapshot: list[ExposureState], live: Mapping[str, LiveEntry], snapshot_as_of_ms: int
) -> list[ExposureState]:
    """The user's exposure states: the snapshot's, with each rumor that has a newer live entry
    replaced by (or extended with) that entry; snapshot order first, then new rumors sorted."""
    if not live:
        return snapshot
    newer = {r: s for r, (s, t) in live.items() if live_wins(t, snapshot_as_of_ms)}
    if not newer:
        return snapshot
    out = [newer.pop(s.rumor_id, s) for s in snapshot]
    out.extend(newer[r] for r in sorted(newer))
    return out


def exposed_in_layers(in_snapshot: bool, live_as_of_ms: int | None, snapshot_as_of_ms: int) -> bool:
    """Whether a user counts as exposed to a rumor: the snapshot has the pair, or a live entry
    newer than the snapshot does (a live entry always holds at least one exposure)."""
    if in_snapshot:
        return True
    return live_as_of_ms is not None and live_wins(live_as_of_ms, snapshot_as_of_ms)
