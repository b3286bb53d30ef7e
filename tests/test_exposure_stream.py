"""The stream consumer in process against a real redis-server: one-row and packed entries,
rejects from the stream, everything acknowledged; bad options exit non-zero."""

from __future__ import annotations

import time

import pytest
import redis

from cli.main import main
from domain.delivery import day_of
from feature_store import keys
from feature_store.exposure_consumer import ExposureConsumer
from feature_store.live_ingest import decode_day
from tests.fixtures.service import snapshot


def test_one_row_and_packed_entries_are_applied_and_acknowledged(client: redis.Redis) -> None:
    snapshot(client, "v1", [("u-old", "r2", "click", 3)])
    now = int(time.time()) - 5
    client.xadd(keys.EXPOSURE_STREAM, {"user_id": "u1", "item_id": "i1", "ts": str(now),
                                       "surface": "feed", "action": "click"})  # fmt: skip
    lines = [f"u1\ti2\t{now}\tsearch\tshare", "u2\ti1\t2001-01-01T00:00:00Z\tfeed\tclick",
             "u2\ti-none\t" + str(now) + "\tfeed\tclick", "only-a-user"]  # fmt: skip
    client.xadd(keys.EXPOSURE_STREAM, {"rows": "\n".join(lines)})
    summary = ExposureConsumer(client, consumer="t1", block_ms=50).run(exit_when_idle=True)
    assert (summary.entries, summary.rows, summary.stored, summary.untagged) == (2, 5, 2, 1)
    assert summary.rejected == 2
    reasons = sorted(f[b"reason"] for _, f in client.xrange(keys.INGEST_REJECTS))
    assert reasons == [b"null_or_empty_item_id", b"ts_outside_window"]
    assert {f[b"source"] for _, f in client.xrange(keys.INGEST_REJECTS)} == {b"stream"}
    day = decode_day(client.hgetall(keys.live_day("u1", day_of(now))))
    assert day["r1"].exposures == 2 and day["r1"].strongest_action == 4
    assert day["r1"].surface_mask == 0b11 and day["r2"].exposures == 1
    assert client.xinfo_groups(keys.EXPOSURE_STREAM)[0]["pending"] == 0


@pytest.mark.parametrize("claim_idle_ms", [0, 60_000])
def test_a_server_without_the_script_applies_each_entry_once(
    client: redis.Redis, claim_idle_ms: int
) -> None:
    """A flushed script cache (a restarted server) fails the apply that the next batch's reads
    follow in the same round trip: those reads ran before the batch was acknowledged (a claim
    at idle 0 takes its entries back, as the own-pending read would), so they must not be
    applied as the next batch."""
    snapshot(client, "v1", [("u-old", "r2", "click", 3)])
    now = int(time.time()) - 5
    for n in range(10):
        client.xadd(keys.EXPOSURE_STREAM, {"user_id": f"u{n % 3}", "item_id": "i1",
                                           "ts": str(now), "surface": "feed",
                                           "action": "click"})  # fmt: skip
    client.script_flush()
    consumer = ExposureConsumer(client, consumer="t1", batch=4, block_ms=50,
                                claim_idle_ms=claim_idle_ms)  # fmt: skip
    summary = consumer.run(exit_when_idle=True)
    assert (summary.entries, summary.stored) == (10, 10)
    got = [decode_day(client.hgetall(keys.live_day(f"u{u}", day_of(now))))["r1"].exposures
           for u in range(3)]  # fmt: skip
    assert got == [4, 3, 3] and client.xinfo_groups(keys.EXPOSURE_STREAM)[0]["pending"] == 0


@pytest.mark.parametrize(
    "argv", [["--group", "a b"], ["--batch", "0"], ["--batch", "10001"], ["--stream", "a b"]]
)
def test_bad_options_exit_2_and_create_nothing(
    argv: list[str], client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["ingest", "--exit-when-idle", *argv]) == 2
    assert not client.exists(keys.EXPOSURE_STREAM)
