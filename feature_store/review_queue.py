"""The live review queue in Redis (``keys.LIVE_REVIEW``: review id -> entry JSON) and its
audit entries in the live layer's audit stream, written together in one Lua script.

The queue sits under the ``{live}`` hash tag beside the audit stream, so an addition or a
decision and its audit entries are one script on one slot, also on a cluster. It does not bump
the layer's ``seq``: the service never reads the queue, so there is nothing for it to reload."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from domain.review import ReviewEntry
from feature_store import keys
from feature_store.codecs import dump_json, load_json

# KEYS: seq, audit, review. ARGV: actor, ts, command, note, then six per entry: kind, id,
# op ("set", "del" or "none": only audited), value, audit before, audit after. A "set" to the
# value already held and a "del" of an absent entry change and record nothing.
_CHANGE = """
local seq = redis.call('GET', KEYS[1]) or '0'
local changed = 0
for i = 1, (#ARGV - 4) / 6 do
  local b = 4 + (i - 1) * 6
  local kind, id, op = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local go = true
  if op == 'set' then
    go = redis.call('HGET', KEYS[3], id) ~= ARGV[b + 4]
    if go then redis.call('HSET', KEYS[3], id, ARGV[b + 4]) end
  elseif op == 'del' then
    go = redis.call('HDEL', KEYS[3], id) == 1
  end
  if go then
    changed = changed + 1
    redis.call('XADD', KEYS[2], '*', 'actor', ARGV[1], 'ts', ARGV[2], 'command', ARGV[3],
               'kind', kind, 'id', id, 'before', ARGV[b + 5], 'after', ARGV[b + 6],
               'seq', seq, 'note', ARGV[4])
  end
end
return changed
"""


@dataclass(frozen=True, slots=True)
class QueueChange:
    """One audited change: ``op`` "set" (``entry`` queued), "del" (taken off the queue) or
    "none" (only recorded: an item text kept, a decision on a nightly entry)."""

    kind: str
    id: str
    op: str
    value: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def read_queue(client: redis.Redis) -> dict[str, ReviewEntry]:
    """Every live entry by review id."""
    raw = client.hgetall(keys.LIVE_REVIEW)
    return {k.decode(): ReviewEntry.from_dict(load_json(v)) for k, v in raw.items()}


def queued(entry: ReviewEntry) -> QueueChange:
    """The change that queues ``entry`` live."""
    value = entry.to_dict()
    return QueueChange("review", entry.review_id, "set", value, None, value)


def change_queue(
    client: redis.Redis, changes: list[QueueChange], *, actor: str, command: str, note: str = ""
) -> int:
    """Apply ``changes`` at once, one audit entry per change that changes something; returns
    how many did."""
    if not changes:
        return 0
    argv: list[Any] = [actor, f"{time.time():.3f}", command, note]
    for c in changes:
        if c.op not in ("set", "del", "none"):
            raise ValueError(f"unknown queue op {c.op!r}")
        value = dump_json(c.value) if c.value is not None else b""
        argv += [c.kind, keys.check_id(c.id, f"{c.kind} id"), c.op, value, _audit(c.before),
                 _audit(c.after)]  # fmt: skip
    return int(client.eval(_CHANGE, 3, keys.LIVE_SEQ, keys.LIVE_AUDIT, keys.LIVE_REVIEW, *argv))


def _audit(record: dict[str, Any] | None) -> bytes:
    """An audit entry's before/after value: the record's JSON, "" for none."""
    return dump_json(record) if record is not None else b""
