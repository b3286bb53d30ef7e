"""The outbox verbs of the ``debunk`` command: ``notify`` (a rumor's spreaders into the
notification outbox) and ``export-outbox`` (the outbox into Parquet)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ranking.policy import ServingPolicy

# domain.vocab.NOTIFY_REASONS, spelled out so that parsing the command line imports nothing.
REASONS = ("confirmed", "verdict_changed")


def _print_json(obj: dict[str, Any]) -> None:
    """Print a summary as the other verbs do (cli/main.py)."""
    print(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def cmd_notify(args: argparse.Namespace) -> int:
    """Run notify_spreaders for one rumor against REDIS_URL or the embedded store."""
    from feature_store.connection import redis_settings
    from feature_store.outbox import OutboxError
    from offline.live.notify import NotifyError, notify_spreaders
    from ranking.spreaders import SpreadRecord

    policy = ServingPolicy(push_daily_cap=args.push_daily_cap)
    now = time.time() if args.now is None else args.now
    extra = [SpreadRecord(u, "share", int(now)) for u in _ids(args.extra_users)]
    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            summary = notify_spreaders(client, Path(args.state), args.rumor_id, args.reason, now,
                                       extra=extra, policy=policy, batch=args.batch)  # fmt: skip
        except (NotifyError, OutboxError) as e:
            print(f"debunk notify: {e}", file=sys.stderr)
            return 2
        finally:
            client.close()
    _print_json(summary)
    return 0


def _ids(spec: str) -> list[str]:
    """``u1,u2`` -> ["u1", "u2"] (ids are checked where they are used)."""
    return [p.strip() for p in spec.split(",") if p.strip()]


def cmd_export_outbox(args: argparse.Namespace) -> int:
    """Drain the outbox into Parquet."""
    from feature_store.connection import redis_settings
    from offline.live.export_outbox import OutboxExportError, export_outbox

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            summary = export_outbox(client, Path(args.out), chunk=args.chunk,
                                    resume_from_ledger=args.resume_from_ledger)  # fmt: skip
        except OutboxExportError as e:
            print(f"debunk export-outbox: {e}", file=sys.stderr)
            return 2
        finally:
            client.close()
    _print_json(summary)
    return 0


def add_outbox_parsers(sub: Any) -> None:
    """Register ``notify`` and ``export-outbox`` on the command's subparsers."""
    s = sub.add_parser("notify", help="notify a confirmed rumor's sharers and commenters")
    s.add_argument("rumor_id")
    s.add_argument("--reason", choices=REASONS, default="confirmed")
    s.add_argument("--state", default=".debunk/state", help="the nightly state folder")
    s.add_argument("--extra-users", default="", help="more spreaders, comma-separated ids")
    s.add_argument("--push-daily-cap", type=int, default=ServingPolicy().push_daily_cap,
                   help="notifications a user may get per UTC day")  # fmt: skip
    s.add_argument("--batch", type=int, default=100, help="users per atomic outbox write")
    s.add_argument("--now", type=float, default=None, help="unix time to notify at (tests)")
    s.set_defaults(func=cmd_notify)

    s = sub.add_parser("export-outbox", help="drain the notification outbox into Parquet")
    s.add_argument("--out", required=True, help="folder for dt=YYYY-MM-DD/outbox-*.parquet")
    s.add_argument("--chunk", type=int, default=100_000, help="entries per file at most")
    s.add_argument(
        "--resume-from-ledger",
        action="store_true",
        help="after a store rollback: move the store's cursor to what OUT holds",
    )
    s.set_defaults(func=cmd_export_outbox)
