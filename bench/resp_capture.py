"""The RESP bytes a redis-py client sends, recorded: the payload ``redis-cli --pipe`` replays
in bench_materialize (the materializer's own commands, keys and values, in the order sent).

Each connection's handshake (AUTH, SELECT, CLIENT SETINFO) is left out: redis-cli logs in
itself, and a replay must not carry this run's password or a command Redis 6.2 refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from feature_store.settings import RedisSettings


class Capture:
    """Where the recording connections of one client append what they send."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def payload(self) -> bytes:
        """Everything recorded, as one buffer."""
        return b"".join(self.chunks)


def _recording(base: type[redis.Connection], capture: Capture) -> type[redis.Connection]:
    """A connection class like ``base`` that appends every command it sends after its
    handshake to ``capture``."""

    class Recording(base):  # type: ignore[valid-type, misc]
        _handshaking = False

        def on_connect_check_health(self, check_health: bool = True) -> None:
            """Log in without recording: the handshake is not the materializer's."""
            self._handshaking = True
            try:
                super().on_connect_check_health(check_health)
            finally:
                self._handshaking = False

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            """Record, then send as the base class does."""
            if not self._handshaking:
                parts: Iterable[bytes] = [command] if isinstance(command, bytes) else command
                capture.chunks.extend(bytes(p) for p in parts)
            super().send_packed_command(command, check_health)

    return Recording


def recording_client(settings: RedisSettings, capture: Capture) -> redis.Redis:
    """A blocking client for ``settings`` (not a cluster) whose sends land in ``capture``."""
    base = redis.UnixDomainSocketConnection if settings.address.unix else redis.Connection
    pool = redis.ConnectionPool(
        connection_class=_recording(base, capture), **settings.client_kwargs()
    )
    return redis.Redis.from_pool(pool)
