"""Every Redis key the project uses, in one place.

Layout (all keys start with ``dbk:``; ``{...}`` is a Redis Cluster hash tag, so every key of
one user lives in one slot):

- ``dbk:{snap}:current``                 string: the version the service reads
- ``dbk:{snap}:versions``                sorted set: complete versions, scored by creation time
- ``dbk:{snap}:writing``                 hash: versions being written -> writer JSON (host, pid)
- ``dbk:v:<version>:meta``               hash: counts and provenance of one snapshot
- ``dbk:v:<version>:rumors``             hash: rumor_id -> rumor JSON
- ``dbk:v:<version>:debunks``            hash: debunk_id -> debunk JSON
- ``dbk:v:<version>:items``              hash: tagged item_id -> rumor ids (comma-separated)
- ``dbk:v:<version>:item-scores``        hash: item_id -> rumor=score pairs of its matcher tags
- ``dbk:v:<version>:u:{<user_id>}``      hash: rumor_id -> packed exposure state
- ``dbk:v:<version>:model``              hash: the learned models' debunk side (one blob set)
- ``dbk:v:<version>:m:{<user_id>}``      hash: one user's ranker factors and prebunk rumors
- ``dbk:dlv:{<user_id>}``                hash: delivery state, outside snapshots (survives flips)
- ``dbk:lx:{<user_id>}``                 hash: rumor_id -> backfilled exposure state + as-of (TTL)
- ``dbk:li:{<user_id>}:<YYYYMMDD>``      hash: ``HH|rumor_id`` -> live-ingested partial aggregate of
  that UTC hour (15 bytes, 16 with a tag score below 1.0; TTL; trimmed below the snapshot's
  watermark after a nightly's flip)
- ``dbk:cap:{<user_id>}:<YYYYMMDD>``     hash: surface -> cards served that UTC day
- ``dbk:evt:{<user_id>}:<event_id>``    string: an event id already applied to delivery state (TTL)
- ``dbk:{events}:stream``                stream: debunk events for the offline side (bounded)
- ``dbk:{events}:seen:<event_id>``       string: an event id already appended to the stream (TTL)
- ``dbk:{events}:exported``              string: the last stream id exported to Parquet
- ``dbk:{outbox}:stream``                stream: push notifications for the platform's push system
- ``dbk:{outbox}:sent:<user_id>,<rumor_id>`` string: the notification id a (user, rumor) got (TTL)
- ``dbk:{outbox}:exported``              string: the last outbox id exported to Parquet
- ``dbk:{ingest}:exposures``             stream: live exposures a platform's log shipper appends
- ``dbk:{ingest}:rejects``               stream: live exposures refused, with the reason (bounded)
- ``dbk:{ingest}:counts``                hash: counter -> live exposures accepted, stored, refused
- ``dbk:{ingest}:batch:<batch_id>``      string: a RecordExposures batch id already applied (TTL)
- ``dbk:experiments``                    hash: experiment name -> experiment config JSON
- ``dbk:{store}:persistence``            hash: the AOF settings an embedded launcher started with
- ``dbk:{live}:rumors``                  hash: rumor_id -> rumor JSON above the snapshot's
- ``dbk:{live}:debunks``                 hash: debunk_id -> debunk JSON above the snapshot's
- ``dbk:{live}:tags``                    hash: item_id -> JSON of rumor ids tagged and untagged live
- ``dbk:{live}:seq``                     string: a counter every change of the live layer bumps
- ``dbk:{live}:audit``                   stream: who changed what in the live layer, and how
- ``dbk:{live}:audit-exported``          string: the last audit stream id exported to Parquet
- ``dbk:{live}:review``                  hash: review id -> JSON of a pair queued live for review

IDs are validated against a strict alphabet before they touch a key: no input can contain a
brace, a glob character, whitespace or a separator that would address another key.
"""

from __future__ import annotations

import functools
import re

from domain.ids import InvalidId, check_id, valid_id

__all__ = ["InvalidId", "check_id", "valid_id"]

PREFIX = b"dbk:"
_VERSION_RE = re.compile(r"[0-9A-Za-z-]{1,64}")

# One hash tag for both, so the flip is one MULTI/EXEC on one slot, also on a cluster.
CURRENT = b"dbk:{snap}:current"
VERSIONS = b"dbk:{snap}:versions"
WRITING = b"dbk:{snap}:writing"
EVENTS = b"dbk:{events}:stream"
EVENTS_EXPORTED = b"dbk:{events}:exported"
# The notification outbox and its export cursor share a hash tag with the once-markers, so a
# batch of notifications is one script on one slot.
OUTBOX = b"dbk:{outbox}:stream"
OUTBOX_EXPORTED = b"dbk:{outbox}:exported"
# Live exposure ingest: the default stream, its rejects and counters (feature_store.live_ingest).
EXPOSURE_STREAM = b"dbk:{ingest}:exposures"
INGEST_REJECTS = b"dbk:{ingest}:rejects"
INGEST_COUNTS = b"dbk:{ingest}:counts"
# All experiment configs in one hash: the service loads them in one round trip.
EXPERIMENTS = b"dbk:experiments"
# What the embedded launcher started its server with, for clients that may not run CONFIG.
PERSISTENCE = b"dbk:{store}:persistence"
# The live catalog layer: one hash tag, so one change (entries, seq, audit) is one Lua script on
# one slot, also on a cluster.
LIVE_RUMORS = b"dbk:{live}:rumors"
LIVE_DEBUNKS = b"dbk:{live}:debunks"
LIVE_TAGS = b"dbk:{live}:tags"
LIVE_SEQ = b"dbk:{live}:seq"
LIVE_AUDIT = b"dbk:{live}:audit"
LIVE_AUDIT_EXPORTED = b"dbk:{live}:audit-exported"
# The live review queue (``debunk items add``), beside the audit stream its changes go to.
LIVE_REVIEW = b"dbk:{live}:review"


def check_version(version: str) -> str:
    """Return ``version`` if it is a valid snapshot version name, else raise InvalidId."""
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise InvalidId("snapshot version must be 1-64 letters, digits or dashes")
    return version


def _v(version: str) -> bytes:
    return b"dbk:v:" + check_version(version).encode() + b":"


def meta(version: str) -> bytes:
    """The hash with a snapshot's counts and provenance."""
    return _v(version) + b"meta"


def rumors(version: str) -> bytes:
    """The hash rumor_id -> rumor JSON of a snapshot."""
    return _v(version) + b"rumors"


def debunks(version: str) -> bytes:
    """The hash debunk_id -> debunk JSON of a snapshot."""
    return _v(version) + b"debunks"


def items(version: str) -> bytes:
    """The hash tagged item_id -> comma-separated rumor ids of a snapshot."""
    return _v(version) + b"items"


def item_scores(version: str) -> bytes:
    """The hash item_id -> comma-separated rumor=score of the item's tags scored below 1.0."""
    return _v(version) + b"item-scores"


def user_exposures(version: str, user_id: str) -> bytes:
    """The hash rumor_id -> packed exposure state of one user in a snapshot."""
    return _v(version) + b"u:{" + check_id(user_id, "user_id").encode() + b"}"


def user_exposures_prefix(version: str) -> bytes:
    """What user_exposures(version, u) puts before ``{u}``: for bulk writers that add the tag."""
    return _v(version) + b"u:"


def model(version: str) -> bytes:
    """The hash with a snapshot's model metadata, debunk factors and default user factors."""
    return _v(version) + b"model"


def user_model(version: str, user_id: str) -> bytes:
    """The hash with one user's ranker factors (``f``) and prebunk rumors (``p``)."""
    return _v(version) + b"m:{" + check_id(user_id, "user_id").encode() + b"}"


def delivery(user_id: str) -> bytes:
    """The hash of what one user was served, saw, clicked, shared and dismissed."""
    return b"dbk:dlv:{" + check_id(user_id, "user_id").encode() + b"}"


def live_exposures(user_id: str) -> bytes:
    """The hash rumor_id -> live (backfilled) exposure state of one user, outside snapshots."""
    return b"dbk:lx:{" + check_id(user_id, "user_id").encode() + b"}"


def live_exposures_prefix() -> bytes:
    """What live_exposures(u) puts before ``{u}``: for bulk writers that add the tag."""
    return b"dbk:lx:"


def live_day(user_id: str, day: str) -> bytes:
    """The hash ``HH|rumor_id`` -> live-ingested partial aggregate of one user's rows of one UTC
    hour, per UTC day (fields: domain.exposure_days.bucket_field)."""
    if not (len(day) == 8 and day.isdigit()):
        raise InvalidId("day must be YYYYMMDD")
    return b"dbk:li:{" + check_id(user_id, "user_id").encode() + b"}:" + day.encode()


def live_day_pattern() -> bytes:
    """A SCAN MATCH pattern for every live_day hash (the nightly's trim of covered buckets)."""
    return b"dbk:li:*"


def live_day_of(key: bytes) -> str | None:
    """The UTC day (YYYYMMDD) of a live_day key, or None when ``key`` is not one."""
    if key.startswith(b"dbk:li:{") and key[-10:-8] == b"}:" and key[-8:].isdigit():
        return key[-8:].decode()
    return None


def ingest_batch(batch_id: str) -> bytes:
    """Marks that the RecordExposures batch ``batch_id`` was applied (a retry applies nothing)."""
    return b"dbk:{ingest}:batch:" + check_id(batch_id, "batch_id").encode()


def daily_caps(user_id: str, day: str) -> bytes:
    """The per-surface count of cards served to one user on one UTC day (YYYYMMDD)."""
    if not (len(day) == 8 and day.isdigit()):
        raise InvalidId("day must be YYYYMMDD")
    return b"dbk:cap:{" + check_id(user_id, "user_id").encode() + b"}:" + day.encode()


def event_applied(user_id: str, event_id: str) -> bytes:
    """Marks that the event ``event_id`` of ``user_id`` changed delivery state (the user's hash
    tag: set in the same script as the writes, also on a cluster)."""
    return (
        b"dbk:evt:{" + check_id(user_id, "user_id").encode() + b"}:"
        + check_id(event_id, "event_id").encode()
    )  # fmt: skip


def event_streamed(event_id: str) -> bytes:
    """Marks that the event ``event_id`` was appended to the event stream (its hash tag)."""
    return b"dbk:{events}:seen:" + check_id(event_id, "event_id").encode()


def notified(user_id: str, rumor_id: str) -> bytes:
    """Marks that ``user_id`` was notified about ``rumor_id`` (holds the notification id); a
    comma, outside the id alphabet, parts the two ids, so no other pair has the same key."""
    return (
        b"dbk:{outbox}:sent:" + check_id(user_id, "user_id").encode() + b","
        + check_id(rumor_id, "rumor_id").encode()
    )  # fmt: skip


def feed_keys(
    version: str,
    user_ids: list[str],
    day: str,
    *,
    live: bool = False,
    live_days: tuple[str, ...] = (),
) -> list[tuple[bytes, ...]]:
    """For each user, the keys one feed read touches: user_exposures, delivery, daily_caps and
    user_model, then live_exposures when ``live``, then live_day of each of ``live_days`` (same
    bytes as those functions; each id is checked once, not four times)."""
    parts = _feed_parts(version, day, live, tuple(live_days))
    out: list[tuple[bytes, ...]] = []
    for user_id in user_ids:
        tag = check_id(user_id, "user_id").encode()
        out.append(tuple([head + tag + tail for head, tail in parts]))
    return out


@functools.lru_cache(maxsize=64)
def _feed_parts(
    version: str, day: str, live: bool, live_days: tuple[str, ...]
) -> tuple[tuple[bytes, bytes], ...]:
    """What each feed_keys key puts before and after the user id: checked and built once per
    (version, day, live days), not per call (a feed read's keys differ only in the id)."""
    if not all(len(x) == 8 and x.isdigit() for x in (day, *live_days)):
        raise InvalidId("day must be YYYYMMDD")
    v = _v(version)
    parts = [(v + b"u:{", b"}"), (b"dbk:dlv:{", b"}"), (b"dbk:cap:{", b"}:" + day.encode()),
             (v + b"m:{", b"}")]  # fmt: skip
    if live:
        parts.append((b"dbk:lx:{", b"}"))
        parts.extend((b"dbk:li:{", b"}:" + d.encode()) for d in live_days)
    return tuple(parts)


def version_pattern(version: str) -> bytes:
    """A SCAN MATCH pattern for every key of one snapshot version."""
    return _v(version) + b"*"
