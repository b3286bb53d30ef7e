"""The durability policy: when an acknowledged write is on disk, and whether a server keeps it.

``DEBUNK_REDIS_FSYNC`` chooses the policy (``always``, the default, or ``everysec``). The
embedded server is started with it (``server_directives``); a server named by ``REDIS_URL`` is
checked at service start-up (``warn_unless_durable``), which logs a warning when the server
cannot honour the policy. Redis 6.2 has no WAITAOF: under ``appendfsync always`` it sends a
reply only after the write's fsync, so an OK from ``RecordEvents`` means the events are on disk;
under ``everysec`` an OK means they are in the kernel's page cache, and a crash of the machine
(not of redis-server alone) may lose the last one to two seconds of acknowledged writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import redis
import redis.asyncio

from feature_store import keys

log = logging.getLogger("debunk.store")

FSYNC_ENV = "DEBUNK_REDIS_FSYNC"
FSYNC_POLICIES = ("always", "everysec")
DEFAULT_FSYNC = "always"  # see docs/decisions/0010-durable-closed-embedded-redis.md
# RDB snapshots besides the AOF (Redis's own defaults): a second copy, and a fast restart.
SAVE_POINTS = "3600 1 300 100 60 10000"


def fsync_policy(env: dict[str, str] | None = None) -> str:
    """The configured policy; ValueError naming the variable for anything else."""
    env = dict(os.environ) if env is None else env
    policy = (env.get(FSYNC_ENV) or DEFAULT_FSYNC).strip().lower()
    if policy not in FSYNC_POLICIES:
        raise ValueError(f"{FSYNC_ENV} must be one of {', '.join(FSYNC_POLICIES)}: {policy!r}")
    return policy


def server_directives(policy: str) -> list[str]:
    """redis.conf lines that make a server keep every acknowledged write under ``policy``: an
    AOF (with an RDB preamble on rewrite) fsynced as the policy says, also during rewrites, and
    RDB snapshots besides."""
    if policy not in FSYNC_POLICIES:
        raise ValueError(f"unknown fsync policy {policy!r}")
    return [
        "appendonly yes",
        f"appendfsync {policy}",
        "no-appendfsync-on-rewrite no",
        "aof-use-rdb-preamble yes",
        "aof-load-truncated yes",
        f"save {SAVE_POINTS}",
        "stop-writes-on-bgsave-error yes",
    ]


def problems(appendonly: str | None, appendfsync: str | None, policy: str) -> list[str]:
    """Why a server with these settings cannot honour ``policy`` (empty: it can). ``None``
    means the setting could not be read."""
    out: list[str] = []
    if appendonly is not None and appendonly != "yes":
        out.append("the server keeps no AOF (appendonly no): acknowledged writes are lost")
        return out
    if appendfsync is None:
        out.append(f"appendfsync could not be read, so appendfsync {policy} is not verified")
    elif policy == "always" and appendfsync != "always":
        out.append(f"appendfsync is {appendfsync}, not always: an OK may precede the fsync")
    elif policy == "everysec" and appendfsync not in ("always", "everysec"):
        out.append(f"appendfsync is {appendfsync}: writes are fsynced only when the kernel likes")
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _read_settings(client: redis.asyncio.Redis) -> tuple[str | None, str | None, str]:
    """(appendonly, appendfsync, where they came from): CONFIG GET when the server allows it,
    else INFO persistence and the record an embedded launcher leaves (``keys.PERSISTENCE``)."""
    try:
        got = await client.config_get("appendonly")
        fsync = await client.config_get("appendfsync")
        return (_text(got.get("appendonly", "")) or None,
                _text(fsync.get("appendfsync", "")) or None, "CONFIG GET")  # fmt: skip
    except redis.ResponseError:
        pass  # CONFIG renamed or refused by an ACL: read what clients may read
    info = await client.info("persistence")
    appendonly = "yes" if str(info.get("aof_enabled", "0")) == "1" else "no"
    recorded = {_text(k): _text(v) for k, v in (await client.hgetall(keys.PERSISTENCE)).items()}
    if recorded.get("appendonly") == appendonly and recorded.get("appendfsync"):
        return appendonly, recorded["appendfsync"], "INFO persistence and the launcher's record"
    return appendonly, None, "INFO persistence"


async def check_persistence(client: redis.asyncio.Redis, policy: str) -> list[str]:
    """Why the server behind ``client`` cannot honour ``policy`` (empty: it can)."""
    appendonly, appendfsync, _ = await _read_settings(client)
    out = problems(appendonly, appendfsync, policy)
    info = await client.info("persistence")
    if str(info.get("aof_last_write_status", "ok")) != "ok":
        out.append("the server's last AOF write failed (aof_last_write_status is not ok)")
    return out


async def warn_unless_durable(
    client: redis.asyncio.Redis, policy: str | None = None, timeout: float = 2.0
) -> list[str]:
    """Check the server once at start-up and log a warning per problem; never raises (a
    server that is down is the degraded mode's business, not a reason not to start)."""
    policy = policy or fsync_policy()
    try:
        found = await asyncio.wait_for(check_persistence(client, policy), timeout)
    except (redis.RedisError, OSError, TimeoutError) as e:
        found = [f"persistence not checked ({type(e).__name__}): durability unknown"]
    for problem in found:
        log.warning("Redis cannot honour %s=%s: %s", FSYNC_ENV, policy, problem)
    return found


def record_persistence(client: redis.Redis, settings: dict[str, str]) -> None:
    """Leave what the launcher started the server with where clients that may not run CONFIG
    can read it (``appendonly``, ``appendfsync``, ``by``)."""
    client.delete(keys.PERSISTENCE)
    client.hset(keys.PERSISTENCE, mapping={**settings, "by": "embedded"})
