"""Request bodies decoded by the service itself, not by grpc: an undecodable body becomes
INVALID_ARGUMENT (grpc would answer UNKNOWN and log a traceback per call), counted with the
other errors and logged at most once per interval with a count of what was held back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

log = logging.getLogger("debunk.service.requests")

# At most one warning per this many seconds per process; the next one says how many it skipped.
BAD_BODY_LOG_INTERVAL_S = 10.0


class RateLimitedLog:
    """One warning per ``interval`` seconds; the calls in between are counted, not logged."""

    def __init__(self, interval: float = BAD_BODY_LOG_INTERVAL_S) -> None:
        self.interval = interval
        self.skipped = 0
        self._last = -float("inf")

    def warn(self, message: str, *args: Any) -> bool:
        """Log ``message`` unless one was logged within the interval; whether it was logged."""
        now = time.monotonic()
        if now - self._last < self.interval:
            self.skipped += 1
            return False
        self._last, skipped, self.skipped = now, self.skipped, 0
        log.warning(message + " (%d more since the last warning)", *args, skipped)
        return True


async def decode(
    method: str,
    parse: Callable[[bytes], Any] | None,
    body: bytes,
    context: grpc.aio.ServicerContext,
    bad_log: RateLimitedLog,
) -> Any:
    """``parse(body)``, or the call ends INVALID_ARGUMENT (no traceback, rate-limited log)."""
    if parse is None:
        return body
    try:
        return parse(body)
    except (DecodeError, ValueError, TypeError) as e:
        bad_log.warn("%s: undecodable request body (%d bytes): %s", method, len(body), e)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request body is not a valid message")
