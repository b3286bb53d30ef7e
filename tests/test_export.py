"""export-events never destroys exported rows: not after a killed drain, not after the store
rolled back to an older dump (a real redis-server killed with SIGKILL and restarted)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import redis

from domain.delivery import DeliveryEvent
from feature_store import events as stream
from feature_store.embedded import EmbeddedRedis
from offline.nightly.export_events import LEDGER, ExportError, export_events

T0 = 1_790_000_000


def record(client: redis.Redis, *users: str) -> None:
    pipe = client.pipeline()
    stream.queue_append(
        pipe,
        [DeliveryEvent(u, "d1", "r1", "feed", "impression", T0 + i) for i, u in enumerate(users)],
    )
    pipe.execute()


def exported_users(out: Path) -> list[str]:
    return sorted(ds.dataset(out, format="parquet").to_table()["user_id"].to_pylist())


def kill_and_restart(server: EmbeddedRedis) -> EmbeddedRedis:
    """SIGKILL the server (nothing saved since the last SAVE) and wait for its owner's
    supervisor to start it again on its folder and port."""
    assert server._proc is not None
    victim = server._proc
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 30
    while server.restarts < 1 or not redis.Redis.from_url(server.url).ping():
        assert time.monotonic() < deadline, "the supervisor did not restart the server"
        time.sleep(0.02)
    return server


def test_a_store_rolled_back_behind_the_export_stops_it_and_erases_nothing(tmp_path: Path) -> None:
    out = tmp_path / "events"
    server = EmbeddedRedis(tmp_path / "redis", extra_args=("--save", "", "--appendonly", "no"))
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        record(client, "u1", "u2")
        # the dump the store will roll back to: u1, u2 in the stream, cursor unset
        server.admin_command("SAVE")
        assert export_events(client, out, chunk=1)["events"] == 2
        record(client, "u3")
        assert export_events(client, out)["events"] == 1
        assert exported_users(out) == ["u1", "u2", "u3"]
        files = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}

        server = kill_and_restart(server)
        client = redis.Redis.from_url(server.url)
        assert stream.exported_cursor(client) == "0-0"  # the rollback is real
        with pytest.raises(ExportError, match="--resume-from-ledger"):
            export_events(client, out)
        assert exported_users(out) == ["u1", "u2", "u3"]
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == files

        record(client, "u4")  # new traffic after the restart
        summary = export_events(client, out, resume_from_ledger=True)
        assert summary["events"] == 1
        assert exported_users(out) == ["u1", "u2", "u3", "u4"]
        assert (out / LEDGER).exists()
    finally:
        server.stop()


def test_a_rewrite_keeps_every_row_the_file_already_had(
    client: redis.Redis, tmp_path: Path
) -> None:
    record(client, "u1", "u2", "u3")
    first_id = stream.read_after(client, "0-0", 1)[0][0]
    assert export_events(client, tmp_path, chunk=10)["events"] == 3
    [first] = tmp_path.rglob("events-*.parquet")
    # The stream comes back holding only the first event, under the same id, and the cursors
    # are gone: the chunk starting there is exported again, with one row instead of three.
    client.delete(b"dbk:{events}:stream", b"dbk:{events}:exported")
    (tmp_path / LEDGER).unlink()
    client.xadd(b"dbk:{events}:stream", {"user_id": "u1", "debunk_id": "d1", "ts": T0}, id=first_id)
    assert export_events(client, tmp_path)["events"] == 1
    assert list(tmp_path.rglob("events-*.parquet")) == [first]
    assert exported_users(tmp_path) == ["u1", "u2", "u3"]
