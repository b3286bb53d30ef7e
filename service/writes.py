"""RecordEvents' write policy: its answer is the truth about what Redis holds.

A read may be given up at the caller's deadline (the answer is then degraded); a write may not,
since an answer that says "not stored" for events Redis did store makes the caller send them
again. So: with no time left to send, the call is UNAVAILABLE and nothing was sent; once sent,
the write is awaited up to ``WRITE_TIMEOUT_S`` whatever the caller's deadline (a busy loop that
reads the reply late still answers OK), and it runs to its end even when the call is cancelled.
A write that cannot have reached Redis (the connection was refused) is UNAVAILABLE "not
stored". One whose outcome is unknown (sent, then no reply, or the connection lost) is
UNAVAILABLE too when every event has an id, since a retry with the same ids is recorded once
whatever the first attempt did (``feature_store.event_writes``); without ids it is UNKNOWN
"may be stored", for a retry may record them twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import grpc

from domain.delivery import DeliveryEvent
from feature_store.event_writes import EventWriter
from service.rpc import DEADLINE_MARGIN_S, STORE_ERRORS

log = logging.getLogger("debunk.service.writes")

# Once sent, how long a write is awaited at most (the hung-connection limit of the read side).
WRITE_TIMEOUT_S = 5.0
_NOT_CONNECTED = (ConnectionRefusedError, socket.gaierror, FileNotFoundError)


def nothing_sent(error: BaseException) -> bool:
    """Whether ``error`` happened while connecting, before any command could be sent."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, _NOT_CONNECTED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _log_late_failure(write: asyncio.Future[None]) -> None:
    if not write.cancelled() and write.exception() is not None:
        log.warning("an event write whose call had ended failed: %r", write.exception())


async def store_events(
    context: grpc.aio.ServicerContext, writer: EventWriter, events: list[DeliveryEvent]
) -> None:
    """Write ``events``, or end the call with the status that says what Redis holds."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= DEADLINE_MARGIN_S:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, "events not stored: no time left to send them"
        )
    write = asyncio.ensure_future(writer.write(events))
    write.add_done_callback(_log_late_failure)
    try:
        await asyncio.wait_for(asyncio.shield(write), WRITE_TIMEOUT_S)
    except TimeoutError:
        await _unknown(context, events, f"sent, no reply within {WRITE_TIMEOUT_S:.0f} s")
    except STORE_ERRORS as e:
        if nothing_sent(e):
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"events not stored: {type(e).__name__}"
            )
        await _unknown(context, events, type(e).__name__)


async def _unknown(
    context: grpc.aio.ServicerContext, events: list[DeliveryEvent], why: str
) -> None:
    """End a call whose write may or may not have been applied."""
    if all(e.event_id for e in events):
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"events not stored or stored once ({why}): a retry with the same event_ids "
            "is recorded once",
        )
    await context.abort(
        grpc.StatusCode.UNKNOWN,
        f"events may be stored ({why}): without event_ids a retry may record them twice",
    )
