"""The transport for a deployment, chosen once when the service connects."""

from __future__ import annotations

from feature_store.settings import RedisSettings
from feature_store.transport.base import StoreTransport
from feature_store.transport.redis_py import RedisPyTransport
from feature_store.transport.resp import RespTransport


def open_transport(settings: RedisSettings) -> StoreTransport:
    """Redis Cluster through redis-py (it knows which node owns which slot); one node, over
    TCP, a unix socket or TLS, through the pipelined RESP lanes. Nothing connects until the
    first read."""
    if settings.cluster:
        return RedisPyTransport(settings.async_client())
    return RespTransport(settings)
