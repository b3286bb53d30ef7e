"""The ``debunk`` command: synth, exposures, nightly, serve, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from debunk import logs


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def cmd_synth(args: argparse.Namespace) -> int:
    from offline.synth import synthesize

    summary = synthesize(
        Path(args.out),
        users=args.users,
        days=args.days,
        seed=args.seed,
        start=args.start,
        rumors=args.rumors,
        progress=sys.stderr.isatty(),
        mean_daily=args.mean_daily,
        reach=args.reach,
        cards=args.cards,
    )
    _print_json(summary)
    return 0


def cmd_exposures(args: argparse.Namespace) -> int:
    from offline import catalog
    from offline.exposures import join_exposures, write_parquet_atomic
    from offline.rejects import RejectWriter

    out = Path(args.out)
    tags = catalog.load_tags(Path(args.tags))
    rejects = RejectWriter(out / "rejects.parquet")
    state, summary = join_exposures(Path(args.logs), tags, sink=rejects.add)
    rejected = rejects.close()
    written = write_parquet_atomic(state, out / "exposures.parquet")
    _print_json({"output": str(written), "rejects": str(rejected or ""), **summary.as_dict()})
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from matching import Thresholds
    from offline.match import run_match

    thresholds = Thresholds(high=args.high, low=args.low)
    _print_json(run_match(Path(args.items), Path(args.library), Path(args.out), thresholds))
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    from feature_store.connection import redis_settings
    from offline.nightly import run_nightly

    with redis_settings() as settings:
        summary = run_nightly(
            Path(args.data),
            args.date,
            Path(args.state),
            settings,
            lookback_days=args.lookback_days,
            keep_versions=args.keep_versions,
            train=not args.no_train,
        )
    _print_json(summary)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from offline import catalog
    from offline.nightly import train_night

    data = Path(args.data)
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    debunks = catalog.load_debunks(catalog.find_input(data, catalog.DEBUNK_FILES))
    state = Path(args.state) / "current" / "exposures.parquet"
    models = train_night(data, state, rumors, debunks, args.date, args.lookback_days)
    _print_json(models.summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from offline.evaluate import evaluate_at_risk, evaluate_ranker

    out: dict[str, Any] = {}
    if args.world:
        out["ranker"] = evaluate_ranker(Path(args.world), train_days=args.train_days, k=args.k)
    if args.ced:
        ced = Path(args.ced)
        if (ced / "engagements.parquet").exists():
            out["at_risk"] = evaluate_at_risk(ced, k=args.at_risk_k)
        else:
            out["at_risk"] = {"skipped": f"{ced}/engagements.parquet not found"}
    _print_json(out)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2, sort_keys=True, default=str))
    return 0


def cmd_export_events(args: argparse.Namespace) -> int:
    from feature_store.connection import redis_settings
    from offline.export_events import export_events

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            summary = export_events(client, Path(args.out), chunk=args.chunk)
        finally:
            client.close()
    if summary["lost_warning"]:
        print(f"WARNING: {summary['lost_warning']}", file=sys.stderr)
    _print_json(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from feature_store.connection import redis_settings
    from service.server import ServerConfig, run_until_signalled

    if args.workers > 1 and args.port == 0:
        raise SystemExit("debunk serve: --workers needs a fixed --port to share")
    config = ServerConfig(
        host=args.host, port=args.port, poll_interval=args.poll_interval,
        tls_cert=args.tls_cert, tls_key=args.tls_key, metrics_port=args.metrics_port,
        feed_daily_cap=args.feed_daily_cap,
    )  # fmt: skip
    with redis_settings() as settings:
        children = _spawn_workers(args, settings.url) if args.workers > 1 else []
        try:
            asyncio.run(run_until_signalled(settings, config))
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait(timeout=30)
    return 0


def _spawn_workers(args: argparse.Namespace, redis_url: str) -> list[subprocess.Popen[bytes]]:
    """Workers 2..N: same port (SO_REUSEPORT), same Redis, metrics on the next ports."""
    children = []
    for i in range(1, args.workers):
        cmd = [sys.executable, "-m", "debunk.cli", "--log-level", args.log_level, "serve",
               "--host", args.host, "--port", str(args.port), "--workers", "1",
               "--poll-interval", str(args.poll_interval),
               "--feed-daily-cap", str(args.feed_daily_cap)]  # fmt: skip
        if args.metrics_port:
            cmd += ["--metrics-port", str(args.metrics_port + i)]
        if args.tls_cert and args.tls_key:
            cmd += ["--tls-cert", args.tls_cert, "--tls-key", args.tls_key]
        children.append(subprocess.Popen(cmd, env={**os.environ, "REDIS_URL": redis_url}))
    return children


def cmd_demo(args: argparse.Namespace) -> int:
    from debunk.demo import run_demo

    return run_demo(Path(args.workdir), users=args.users, days=args.days, seed=args.seed)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="debunk", description=__doc__)
    p.add_argument("--log-level", default=os.environ.get("DEBUNK_LOG_LEVEL", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic world with every input contract")
    s.add_argument("--out", required=True)
    s.add_argument("--users", type=int, default=10_000)
    s.add_argument("--days", type=int, default=7)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--start", type=_date, default=date(2026, 10, 1))
    s.add_argument("--rumors", type=int, default=None)
    s.add_argument("--mean-daily", type=float, default=5.0, help="background exposures/user/day")
    s.add_argument("--reach", type=float, default=0.2, help="rumor exposure rows per user")
    s.add_argument("--cards", type=int, default=1, help="debunks served per user and rumor")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("exposures", help="run the exposure join alone, to Parquet")
    s.add_argument("--logs", required=True, help="folder of dt=YYYY-MM-DD partitions")
    s.add_argument("--tags", required=True, help="tagged items (Parquet or CSV)")
    s.add_argument("--out", required=True, help="folder for exposures.parquet")
    s.set_defaults(func=cmd_exposures)

    s = sub.add_parser("match", help="tag item texts to library rumors; write a review queue")
    s.add_argument("--items", required=True, help="items.parquet (item_id, text)")
    s.add_argument("--library", required=True, help="folder with rumors.jsonl (or .parquet)")
    s.add_argument("--out", required=True, help="folder for matched_tags and review_queue")
    s.add_argument("--high", type=float, default=0.35, help="auto-tag at or above this score")
    s.add_argument("--low", type=float, default=0.15, help="review queue at or above this")
    s.set_defaults(func=cmd_match)

    s = sub.add_parser("nightly", help="join, then materialize a new snapshot into Redis")
    s.add_argument("--data", required=True, help="folder with the input contracts")
    s.add_argument("--date", required=True, type=_date, help="the night to run, YYYY-MM-DD")
    s.add_argument("--state", default=".debunk/state", help="folder for the job's outputs")
    s.add_argument("--lookback-days", type=int, default=30)
    s.add_argument("--keep-versions", type=int, default=2)
    s.add_argument("--no-train", action="store_true", help="skip the models (rules only)")
    s.set_defaults(func=cmd_nightly)

    s = sub.add_parser("train", help="train the ranker and the at-risk model (dry run)")
    s.add_argument("--data", required=True, help="folder with the input contracts")
    s.add_argument("--date", required=True, type=_date, help="train on events up to this day")
    s.add_argument("--state", default=".debunk/state", help="the nightly state folder")
    s.add_argument("--lookback-days", type=int, default=30)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="time-split evaluation of the models and baselines")
    s.add_argument("--world", help="a synthetic world (debunk synth) for the ranker")
    s.add_argument("--train-days", type=int, default=None, help="days before the split")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--ced", help="the CED folder for the at-risk model")
    s.add_argument("--at-risk-k", type=int, default=100)
    s.add_argument("--out", help="also write the JSON here")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("export-events", help="drain the service's event stream into Parquet")
    s.add_argument("--out", required=True, help="folder for dt=YYYY-MM-DD/events-*.parquet")
    s.add_argument("--chunk", type=int, default=100_000, help="events per file at most")
    s.set_defaults(func=cmd_export_events)

    s = sub.add_parser("serve", help="run the gRPC service")
    s.add_argument("--host", default=os.environ.get("DEBUNK_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("DEBUNK_PORT", "50051")))
    s.add_argument("--poll-interval", type=float, default=0.5)
    s.add_argument("--tls-cert", default=os.environ.get("DEBUNK_TLS_CERT"))
    s.add_argument("--tls-key", default=os.environ.get("DEBUNK_TLS_KEY"))
    s.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    s.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus /metrics port (worker i uses port + i)",
    )
    s.add_argument(
        "--feed-daily-cap", type=int, default=5, help="feed cards a user may be served per UTC day"
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("demo", help="the whole path end to end on the embedded Redis")
    s.add_argument("--workdir", default=".debunk/demo")
    s.add_argument("--users", type=int, default=20_000)
    s.add_argument("--days", type=int, default=7)
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a clear one-line message for operators; details at debug level
        from offline.catalog import InputError
        from offline.logs import LogSchemaError

        if isinstance(e, InputError | LogSchemaError | FileNotFoundError):
            print(f"debunk {args.command}: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
