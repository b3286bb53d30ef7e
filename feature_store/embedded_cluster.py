"""A Redis Cluster of embedded redis-servers on loopback, for tests and local development."""

from __future__ import annotations

import os
import time
from pathlib import Path

from feature_store.embedded import EmbeddedRedis, RedisStartError
from feature_store.embedded_secret import close_folder, install_secret, load_or_create_secret
from feature_store.settings import RedisSettings


class EmbeddedCluster:
    """A Redis Cluster of ``nodes`` primaries on loopback, from the same redis-server binary.

    For tests and local development of the cluster path; slots are split evenly. The nodes
    share one secret (password and admin names), kept in ``data_dir/secret.json``.
    """

    SLOTS = 16384

    def __init__(self, data_dir: str | os.PathLike[str], nodes: int = 3) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.servers = [
            EmbeddedRedis(
                self.data_dir / f"node{i}",
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ),
                port_below=65536 - 10000,  # the cluster bus listens on port + 10000
            )
            for i in range(nodes)
        ]

    @property
    def url(self) -> str:
        return self.servers[0].url

    def start(self) -> str:
        """Start every node, assign slots, join them, and wait until the cluster is ok."""
        close_folder(self.data_dir)
        shared = load_or_create_secret(self.data_dir)
        for s in self.servers:
            install_secret(s.data_dir, shared)
        for s in self.servers:
            s.start()
        clients = [RedisSettings(url=s.url).sync_client() for s in self.servers]
        share = self.SLOTS // len(clients)
        for i, c in enumerate(clients):
            first = i * share
            last = self.SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            c.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
        port0 = int(self.servers[0].url.rsplit(":", 1)[1].split("/")[0])
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", port0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            infos = [c.execute_command("CLUSTER INFO") for c in clients]
            if all(_cluster_ok(i, len(clients)) for i in infos):
                break
            time.sleep(0.05)
        else:
            raise RedisStartError("embedded cluster did not reach cluster_state:ok")
        for c in clients:
            c.close()
        return self.url

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(info: object, nodes: int) -> bool:
    """Whether CLUSTER INFO (raw text or redis-py's parsed dict) says the whole cluster is up."""
    if isinstance(info, bytes | str):
        text = info.decode() if isinstance(info, bytes) else info
        info = dict(line.split(":", 1) for line in text.split() if ":" in line)
    assert isinstance(info, dict)
    known = int(info.get("cluster_known_nodes", 0))
    return str(info.get("cluster_state")) == "ok" and known == nodes
