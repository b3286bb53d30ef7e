"""How one server process runs: where it listens, how often it polls, the serving policy. These
defaults are the only ones: the ``debunk serve`` flags read theirs from here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from feature_store.row_cache import configured_users
from ranking.policy import ServingPolicy


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen and how; TLS is on when both cert and key are given."""

    host: str = "127.0.0.1"
    port: int = 50051
    poll_interval: float = 0.5
    # SIGTERM: health NOT_SERVING while still answering for drain_s (load balancers move away),
    # then the listener closes and calls in flight get up to grace_s to finish.
    drain_s: float = 2.0
    # Redis unanswered (polls failing) for longer than this: health NOT_SERVING until it answers.
    unreachable_s: float = 2.0
    # Threads for the CPU-heavy part of big calls (service.offload), off the event loop.
    cpu_threads: int = 1
    grace_s: float = 5.0
    tls_cert: str | None = None
    tls_key: str | None = None
    reuse_port: bool = True
    metrics_port: int | None = None  # None: no metrics endpoint; 0: any free port
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    # Answer feed users outside the snapshot's member filter and the live layer's announced
    # users without a store read (service.membership); DEBUNK_MEMBER_FILTER=0 reads every user.
    member_filter: bool = field(
        default_factory=lambda: os.environ.get("DEBUNK_MEMBER_FILTER", "1") != "0"
    )
    # Feed users whose decoded snapshot rows each process keeps (feature_store.row_cache), so a
    # repeat feed read asks Redis only for delivery, caps and live rows; 0 (or
    # DEBUNK_ROW_CACHE_USERS=0): every read brings them.
    row_cache_users: int = field(default_factory=configured_users)
