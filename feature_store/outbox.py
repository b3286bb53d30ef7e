"""The notification outbox: a bounded Redis Stream of push notifications to a rumor's spreaders,
which the platform's push system consumes and ``debunk export-outbox`` drains into Parquet.

A batch of notifications is one Lua script, so a batch is applied whole or not at all (also
when the process is killed mid-run). For each notification the script checks, in order: the
(user, rumor) once-marker (``keys.notified``: set, skip), a dismissal of the rumor or debunk in
the delivery hash (skip), the user's push cap for the UTC day (spent, skip); otherwise it
appends the outbox entry, sets the once-marker, counts the push against the day's cap, records
the debunk as served in the delivery hash, and appends a ``served`` event on surface ``push``
to the event stream with the notification id as its event id (the same writes RecordEvents
makes for a served event with that id, so a push system that reports it again changes
nothing). A re-run after a kill therefore notifies the rest of the users and nobody twice.

The script touches keys of many slots, so it runs on a single Redis node; on a cluster
``append_batch`` refuses with OutboxError.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.cluster

from domain.delivery import DeliveryEvent, Notification, day_of
from feature_store import keys
from feature_store.delivery import CAP_TTL_S, DELIVERY_TTL_S, decode, delivery_field
from feature_store.event_writes import EVENT_ID_TTL_S
from feature_store.events import FIELDS as EVENT_FIELDS
from feature_store.events import STREAM_MAXLEN as EVENTS_MAXLEN
from feature_store.models import decode_user_model

# Approximate bound on the outbox; export-outbox (or the push system's trimming) must keep up.
OUTBOX_MAXLEN = 1_000_000
# How long a (user, rumor) pair stays notified: longer than the nightly lookback (30 days), so
# a rumor confirmed again or re-run inside any window does not notify its spreaders twice.
NOTIFIED_TTL_S = 90 * 24 * 3600
SURFACE = "push"
FIELDS = ("notification_id", "user_id", "rumor_id", "debunk_id", "reason", "ts")
_ARGS_PER = 9 + 2 * len(FIELDS) + 2 * len(EVENT_FIELDS)  # see _BATCH

# KEYS: outbox, event stream, then 5 per notification (_keys). ARGV: the 9 settings of
# append_batch, then _ARGS_PER per notification (_args): its 6 fields, the served, rumor-
# dismissed and debunk-dismissed delivery fields, the entry's 12 and the event's 18 values.
_BATCH = """
local out = {}
local stride = tonumber(ARGV[8])
local n = (#KEYS - 2) / 5
for i = 0, n - 1 do
  local k, a = 2 + i * 5, 9 + i * stride
  if redis.call('EXISTS', KEYS[k + 1]) == 1 then
    out[#out + 1] = 'already'
  elseif redis.call('HEXISTS', KEYS[k + 2], ARGV[a + 8]) == 1
      or redis.call('HEXISTS', KEYS[k + 2], ARGV[a + 9]) == 1 then
    out[#out + 1] = 'dismissed'
  elseif tonumber(redis.call('HGET', KEYS[k + 3], ARGV[6]) or '0') >= tonumber(ARGV[3]) then
    out[#out + 1] = 'capped'
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, a + 10, a + 21))
    redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ARGV[2])
    redis.call('HSET', KEYS[k + 2], ARGV[a + 7], ARGV[a + 6])
    redis.call('EXPIRE', KEYS[k + 2], ARGV[5])
    redis.call('HINCRBY', KEYS[k + 3], ARGV[6], 1)
    redis.call('EXPIRE', KEYS[k + 3], ARGV[4])
    redis.call('SET', KEYS[k + 4], '1', 'EX', ARGV[7])
    if redis.call('SET', KEYS[k + 5], '1', 'NX', 'EX', ARGV[7]) then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', unpack(ARGV, a + 22, a + stride))
    end
    out[#out + 1] = 'notified'
  end
end
return out
"""


class OutboxError(RuntimeError):
    """The outbox cannot be written through this client; nothing was written."""


def _served_event(n: Notification) -> DeliveryEvent:
    """The served event on surface push that a notification stands for."""
    return DeliveryEvent(n.user_id, n.debunk_id, n.rumor_id, SURFACE, "served", n.ts,
                         n.experiment, n.arm, n.notification_id)  # fmt: skip


def _args(n: Notification) -> list[Any]:
    """One notification's fixed-stride script arguments (see _BATCH)."""
    served = _served_event(n)
    dis_rumor = delivery_field(DeliveryEvent(n.user_id, n.debunk_id, n.rumor_id, SURFACE,
                                             "dismiss", n.ts))  # fmt: skip
    dis_debunk = delivery_field(DeliveryEvent(n.user_id, n.debunk_id, "", SURFACE, "dismiss",
                                              n.ts))  # fmt: skip
    entry = [v for f in FIELDS for v in (f, str(getattr(n, f)))]
    event = [v for f in EVENT_FIELDS for v in (f, str(getattr(served, f)))]
    return [n.notification_id, n.user_id, n.rumor_id, n.debunk_id, n.reason, n.ts,
            delivery_field(served), dis_rumor, dis_debunk, *entry, *event]  # fmt: skip


def _keys(n: Notification) -> list[bytes]:
    """One notification's keys, in the script's order."""
    return [
        keys.notified(n.user_id, n.rumor_id),
        keys.delivery(n.user_id),
        keys.daily_caps(n.user_id, day_of(n.ts)),
        keys.event_applied(n.user_id, n.notification_id),
        keys.event_streamed(n.notification_id),
    ]


def append_batch(client: redis.Redis, batch: list[Notification], daily_cap: int) -> list[str]:
    """Apply one batch atomically (see module doc); each notification's status, in order:
    notified, already, dismissed or capped."""
    if isinstance(client, redis.cluster.RedisCluster):
        raise OutboxError("the outbox batch is one script over many slots: use a single node")
    if not batch:
        return []
    script_keys = [keys.OUTBOX, keys.EVENTS]
    argv: list[Any] = [OUTBOX_MAXLEN, NOTIFIED_TTL_S, daily_cap, CAP_TTL_S, DELIVERY_TTL_S,
                       SURFACE, EVENT_ID_TTL_S, _ARGS_PER, EVENTS_MAXLEN]  # fmt: skip
    for n in batch:
        script_keys += _keys(n)
        argv += _args(n)
    script = client.register_script(_BATCH)
    return [s.decode() if isinstance(s, bytes) else str(s) for s in script(script_keys, argv)]


def read_users(
    client: redis.Redis, version: str | None, user_ids: list[str], rumor_id: str, now: float
) -> list[tuple[bool, Any, Any]]:
    """Per user, in one pipelined round trip: already notified about ``rumor_id``, the decoded
    delivery state (with today's push count) and the user's model side in ``version``."""
    day = day_of(now)
    pipe = client.pipeline(transaction=False)
    for user in user_ids:
        pipe.exists(keys.notified(user, rumor_id))
        pipe.hgetall(keys.delivery(user))
        pipe.hget(keys.daily_caps(user, day), SURFACE)
        if version is not None:
            pipe.hgetall(keys.user_model(version, user))
    raw = pipe.execute()
    step = 4 if version is not None else 3
    out = []
    for i in range(0, len(raw), step):
        model = decode_user_model(raw[i + 3]) if version is not None else decode_user_model({})
        out.append((bool(raw[i]), decode(raw[i + 1], raw[i + 2]), model))
    return out


def exported_cursor(client: redis.Redis) -> str:
    """The id of the last outbox entry already exported ("0-0" before the first export)."""
    raw = client.get(keys.OUTBOX_EXPORTED)
    return raw.decode() if raw else "0-0"


def read_after(client: redis.Redis, cursor: str, count: int) -> list[tuple[str, dict[str, str]]]:
    """Up to ``count`` outbox entries strictly after ``cursor``, oldest first."""
    rows = client.xrange(keys.OUTBOX, min=f"({cursor}", max="+", count=count)
    return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]


def oldest_id(client: redis.Redis) -> str | None:
    """The id of the oldest entry still in the outbox."""
    rows = client.xrange(keys.OUTBOX, count=1)
    return rows[0][0].decode() if rows else None


def advance(client: redis.Redis, cursor: str) -> None:
    """Record that everything up to ``cursor`` is exported."""
    client.set(keys.OUTBOX_EXPORTED, cursor)


def trim_consumed(client: redis.Redis, cursor: str) -> None:
    """Drop from the outbox what is exported (up to ``cursor``) and also consumed by every
    consumer group (delivered, and none of it pending): the push system's unacknowledged
    entries stay readable."""
    keep_from = _after(_id(cursor))
    for group in client.xinfo_groups(keys.OUTBOX) if client.exists(keys.OUTBOX) else []:
        keep_from = min(keep_from, _after(_id(_text(group["last-delivered-id"]))))
        pending = client.xpending(keys.OUTBOX, group["name"])
        if pending["pending"]:
            keep_from = min(keep_from, _id(_text(pending["min"])))
    client.xtrim(keys.OUTBOX, minid=f"{keep_from[0]}-{keep_from[1]}", approximate=False)


def _text(value: bytes | str) -> str:
    """A reply field as text (redis-py gives bytes or str, by client settings)."""
    return value.decode() if isinstance(value, bytes) else value


def _id(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable (milliseconds, sequence) pair."""
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def _after(stream_id: tuple[int, int]) -> tuple[int, int]:
    """The smallest stream id after ``stream_id``."""
    return stream_id[0], stream_id[1] + 1


def id_before(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes before ``b``."""
    return _id(a) < _id(b)
