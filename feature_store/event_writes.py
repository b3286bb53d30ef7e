"""Writing debunk events: delivery state, daily caps and the event stream, in one pipelined
round trip. An event with an id is applied once however often it is sent: a Lua script in the
user's slot sets ``keys.event_applied`` and makes the delivery writes only if it was not set,
and one in the stream's slot does the same for its ``XADD`` (``keys.event_streamed``). Each
script is atomic in its own slot, so this holds on a cluster too, and a retry after a failure
between the two completes whichever part is missing. Events without an id are written as
before (a retry writes them again)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio.cluster

from domain.delivery import DeliveryEvent, day_of
from feature_store import keys
from feature_store.delivery import CAP_TTL_S, DELIVERY_TTL_S, delivery_field, queue_events
from feature_store.events import STREAM_MAXLEN, encode_fields, queue_append

# How long an event id is remembered: a retry within this window changes nothing.
EVENT_ID_TTL_S = 3600

_APPLY_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return 1
"""
_APPEND_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
"""


class EventWriter:
    """Writes events through one (async, single-node or cluster) redis-py client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
        self._apply = client.register_script(_APPLY_ONCE)
        self._append = client.register_script(_APPEND_ONCE)

    def _scripted(self, e: DeliveryEvent) -> list[tuple[Any, ...]]:
        """The two EVALSHA argument lists of an event with an id (its slot's, the stream's)."""
        served = e.event == "served"
        cap = keys.daily_caps(e.user_id, day_of(e.ts)) if served else keys.delivery(e.user_id)
        fields = [v for item in encode_fields(e).items() for v in item]
        return [
            (self._apply.sha, 3, keys.event_applied(e.user_id, e.event_id),
             keys.delivery(e.user_id), cap, EVENT_ID_TTL_S, delivery_field(e), e.ts,
             DELIVERY_TTL_S, e.surface if served else "", CAP_TTL_S),
            (self._append.sha, 2, keys.event_streamed(e.event_id), keys.EVENTS,
             EVENT_ID_TTL_S, STREAM_MAXLEN, *fields),
        ]  # fmt: skip

    async def _send(self, events: list[DeliveryEvent]) -> list[Any]:
        """Each event's writes in request order, in one pipeline; on a cluster (whose
        pipelines refuse scripts) the scripts go as concurrent calls beside it."""
        pipe = self.client.pipeline(transaction=False)
        scripts: list[tuple[Any, ...]] = []
        for e in events:
            if not e.event_id:
                queue_events(pipe, [e])
                queue_append(pipe, [e])
            elif self.cluster:
                scripts += self._scripted(e)
            else:
                for args in self._scripted(e):
                    pipe.evalsha(*args)
        calls = [self.client.evalsha(*args) for args in scripts]
        if len(pipe):
            calls.append(pipe.execute(raise_on_error=False))
        replies: list[Any] = []
        for reply in await asyncio.gather(*calls, return_exceptions=True):
            replies += reply if isinstance(reply, list) else [reply]
        return replies

    async def write(self, events: list[DeliveryEvent]) -> None:
        """Apply ``events`` (one pipelined round trip; two when Redis lacks the scripts, e.g.
        after a restart: NOSCRIPT runs nothing, so they are loaded and the scripted events
        sent again, which changes nothing already applied). Raises what the client raises."""
        for attempt in range(2):
            errors = [r for r in await self._send(events) if isinstance(r, BaseException)]
            if not errors:
                return
            if attempt == 0 and all(isinstance(r, redis.exceptions.NoScriptError) for r in errors):
                await self.client.script_load(_APPLY_ONCE)
                await self.client.script_load(_APPEND_ONCE)
                events = [e for e in events if e.event_id]  # the plain ones went through
                continue
            raise errors[0]
