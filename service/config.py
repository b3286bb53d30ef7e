"""How one server process runs: where it listens, how often it polls, the serving policy. These
defaults are the only ones: the ``debunk serve`` flags read theirs from here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ranking.policy import ServingPolicy


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen and how; TLS is on when both cert and key are given."""

    host: str = "127.0.0.1"
    port: int = 50051
    poll_interval: float = 0.5
    grace_s: float = 5.0
    tls_cert: str | None = None
    tls_key: str | None = None
    reuse_port: bool = True
    metrics_port: int | None = None  # None: no metrics endpoint; 0: any free port
    policy: ServingPolicy = field(default_factory=ServingPolicy)
