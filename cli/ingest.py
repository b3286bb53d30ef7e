"""The ``debunk ingest`` verb: consume a Redis Stream of live exposures into the users' live
exposure state (``feature_store.exposure_consumer``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the consumer against REDIS_URL or the embedded store; exit 2 on bad options."""
    from domain.ids import InvalidId
    from feature_store.connection import redis_settings
    from feature_store.exposure_consumer import ExposureConsumer

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            consumer = ExposureConsumer(
                client, stream=args.stream.encode(), group=args.group, consumer=args.consumer,
                batch=args.batch, block_ms=args.block_ms, claim_idle_ms=args.claim_idle_ms,
                window_days=args.lookback_days,
            )  # fmt: skip
        except (InvalidId, ValueError) as e:
            print(f"debunk ingest: {e}", file=sys.stderr)
            client.close()
            return 2
        try:
            summary = consumer.run(exit_when_idle=args.exit_when_idle)
        except KeyboardInterrupt:
            summary = consumer.summary
        finally:
            client.close()
    print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    return 0


def add_ingest_parser(sub: Any) -> None:
    """Register ``ingest`` on the command's subparsers."""
    s = sub.add_parser("ingest", help="consume a Redis Stream of live exposures")
    s.add_argument("--stream", default="dbk:{ingest}:exposures", help="the stream key")
    s.add_argument("--group", default="debunk-ingest", help="the consumer group")
    s.add_argument("--consumer", default=None, help="this consumer's name (default: host name)")
    s.add_argument("--batch", type=int, default=2_000, help="entries per read and script")
    s.add_argument("--block-ms", type=int, default=1_000, help="how long a read waits")
    s.add_argument("--claim-idle-ms", type=int, default=60_000,
                   help="take over other consumers' entries pending this long")  # fmt: skip
    s.add_argument("--lookback-days", type=int, default=30, help="the live state's TTL (days)")
    s.add_argument("--exit-when-idle", action="store_true",
                   help="stop at the first read that finds nothing (backfills, tests)")  # fmt: skip
    s.set_defaults(func=cmd_ingest)
