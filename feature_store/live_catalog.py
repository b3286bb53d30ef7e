"""The live catalog layer in Redis: reading it, changing it (entries, counter and audit in one
Lua script), and the nightly fold's compare-and-delete.

Every key is under the ``{live}`` hash tag (``keys.LIVE_*``), so each script runs on one slot,
also on a cluster. Values are full records (``dump_json`` of ``to_dict``), never deltas: applying
an entry over a snapshot that already folded it changes nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from domain.live import LiveLayer, TagChange, decode_layer
from domain.records import Catalog, Debunk, Rumor
from feature_store import keys
from feature_store.codecs import dump_json, load_json
from feature_store.transport.base import StoreTransport

# kind -> the hash of the layer that holds it
KIND_KEYS = {"rumor": keys.LIVE_RUMORS, "debunk": keys.LIVE_DEBUNKS, "tag": keys.LIVE_TAGS}
AUDIT_FIELDS = ("actor", "ts", "command", "kind", "id", "before", "after", "seq", "note")

# KEYS: seq, audit, then one layer hash per change. ARGV: actor, ts, command, note, then seven
# per change: kind, field, has_expected, expected, new ("" deletes), audit before, audit after.
# Nothing is written unless every entry still holds what the caller read.
_APPLY = """
local n = (#ARGV - 4) / 7
for i = 1, n do
  local b = 4 + (i - 1) * 7
  local cur = redis.call('HGET', KEYS[2 + i], ARGV[b + 2])
  if ARGV[b + 3] == '1' then
    if cur ~= ARGV[b + 4] then return -i end
  elseif cur then return -i end
end
local seq = redis.call('INCR', KEYS[1])
for i = 1, n do
  local b = 4 + (i - 1) * 7
  if ARGV[b + 5] == '' then
    redis.call('HDEL', KEYS[2 + i], ARGV[b + 2])
  else
    redis.call('HSET', KEYS[2 + i], ARGV[b + 2], ARGV[b + 5])
  end
  redis.call('XADD', KEYS[2], '*', 'actor', ARGV[1], 'ts', ARGV[2], 'command', ARGV[3],
             'kind', ARGV[b + 1], 'id', ARGV[b + 2], 'before', ARGV[b + 6],
             'after', ARGV[b + 7], 'seq', seq, 'note', ARGV[4])
end
return seq
"""

# KEYS: seq, then one layer hash per entry. ARGV: field, value as read, per entry. Deletes each
# entry still equal to what was read (a change made since stays live); bumps seq if any went.
_FOLD = """
local removed = 0
for i = 1, #ARGV / 2 do
  local f, v = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('HGET', KEYS[1 + i], f) == v then
    redis.call('HDEL', KEYS[1 + i], f)
    removed = removed + 1
  end
end
if removed > 0 then redis.call('INCR', KEYS[1]) end
return removed
"""


class LiveConflict(RuntimeError):
    """The layer changed between reading and applying (another operator): nothing applied."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the layer to set (``new`` None: delete), with what it held when read
    (``expected``, None: absent) and the effective record before and after, for the audit."""

    kind: str
    id: str
    expected: bytes | None
    new: bytes | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class LayerRead:
    """The layer as one read saw it: decoded, and each entry's raw bytes (kind, id) -> value,
    what ``apply`` and ``clear_folded`` compare against."""

    layer: LiveLayer
    raw: dict[tuple[str, str], bytes]


def encode(record: Rumor | Debunk | TagChange) -> bytes:
    """The layer's bytes of a record."""
    return dump_json(record.to_dict())


def read_layer(client: redis.Redis) -> LayerRead:
    """The whole layer and its seq, read in one MULTI/EXEC (one slot): a consistent view."""
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.LIVE_SEQ)
    for key in KIND_KEYS.values():
        pipe.hgetall(key)
    seq, rumors, debunks, tags = pipe.execute()
    raw = {
        (kind, k.decode()): v
        for kind, values in zip(KIND_KEYS, (rumors, debunks, tags), strict=True)
        for k, v in values.items()
    }
    return LayerRead(decode_layer(seq, rumors, debunks, tags), raw)


def apply(
    client: redis.Redis, changes: list[Change], *, actor: str, command: str, note: str = ""
) -> int:
    """Apply ``changes`` at once with one audit entry each; returns the new seq. Raises
    LiveConflict (nothing applied) when an entry no longer holds what the caller read."""
    if not changes:
        raise ValueError("apply needs at least one change")
    argv: list[Any] = [actor, f"{time.time():.3f}", command, note]
    for c in changes:
        has = "1" if c.expected is not None else "0"
        ident = keys.check_id(c.id, f"{c.kind} id")
        argv += [c.kind, ident, has, c.expected or b"", c.new or b"", _audit(c.before),
                 _audit(c.after)]  # fmt: skip
    hashes = [KIND_KEYS[c.kind] for c in changes]
    seq = client.eval(_APPLY, 2 + len(hashes), keys.LIVE_SEQ, keys.LIVE_AUDIT, *hashes, *argv)
    if seq < 0:
        c = changes[-seq - 1]
        raise LiveConflict(f"{c.kind} {c.id} changed while this command ran: nothing applied")
    return int(seq)


def _audit(record: dict[str, Any] | None) -> bytes:
    """An audit entry's before/after value: the record's JSON, "" for none."""
    return dump_json(record) if record is not None else b""


def clear_folded(client: redis.Redis, read: LayerRead) -> int:
    """Delete every entry of ``read`` whose value is still the one read (the nightly folded it
    into the snapshot it just flipped); returns how many went."""
    if not read.raw:
        return 0
    entries = list(read.raw.items())
    argv = [x for (_, ident), value in entries for x in (ident, value)]
    hashes = [KIND_KEYS[kind] for (kind, _), _ in entries]
    return int(client.eval(_FOLD, 1 + len(hashes), keys.LIVE_SEQ, *hashes, *argv))


def audit_entries(
    client: redis.Redis, ident: str | None = None, *, after: bytes = b"-"
) -> list[dict]:
    """The audit stream's entries after the stream id ``after`` (all by default), oldest first,
    as dicts with ``stream_id``; only those of ``ident`` when given."""
    start = after if after == b"-" else b"(" + after
    out = []
    for sid, fields in client.xrange(keys.LIVE_AUDIT, min=start, max=b"+"):
        entry = {k.decode(): v.decode() for k, v in fields.items()}
        if ident is None or entry.get("id") == ident:
            out.append({"stream_id": sid.decode(), **entry})
    return out


def snapshot_catalog(client: redis.Redis) -> tuple[str | None, Catalog]:
    """The current snapshot's version and its rumors and debunks (an empty catalog before the
    first snapshot): the base the live layer sits on."""
    raw = client.get(keys.CURRENT)
    if not raw:
        return None, Catalog.build([], [])
    version = raw.decode()
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.rumors(version))
    pipe.hgetall(keys.debunks(version))
    rumors, debunks = pipe.execute()
    return version, Catalog.build(
        [Rumor.from_dict(load_json(v)) for v in rumors.values()],
        [Debunk.from_dict(load_json(v)) for v in debunks.values()],
    )


def snapshot_item_rumors(client: redis.Redis, version: str | None, item_id: str) -> list[str]:
    """The rumors ``item_id`` carries in ``version`` (empty without a snapshot)."""
    if version is None:
        return []
    raw = client.hget(keys.items(version), keys.check_id(item_id, "item_id"))
    return raw.decode().split(",") if raw else []


async def load_layer(transport: StoreTransport) -> tuple[LiveLayer, str | None]:
    """The layer for the service through its store transport, and the snapshot pointer read
    after it in the same round trip: a pointer still naming the pinned version proves the
    nightly had not yet cleared what it folded when the layer was read (it flips first)."""
    seq, rumors, debunks, tags, current = await transport.pipeline(
        [
            (b"GET", keys.LIVE_SEQ),
            *((b"HGETALL", key) for key in KIND_KEYS.values()),
            (b"GET", keys.CURRENT),
        ]  # fmt: skip
    )
    return decode_layer(seq, rumors, debunks, tags), (current.decode() if current else None)
