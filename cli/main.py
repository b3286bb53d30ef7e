"""The ``debunk`` command: synth, match, exposures, nightly, export-events, serve, experiment,
report, demo; the lifecycle commands (``cli/lifecycle.py``, ``cli/review.py``); notify and
export-outbox (``cli/outbox.py``); ingest (``cli/ingest.py``)."""

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

from cli import lifecycle, logs, review
from cli.engines import engine_from, engine_options, materialize_options, run_options
from cli.ingest import add_ingest_parser
from cli.outbox import add_outbox_parsers
from ranking.policy import ServingPolicy
from service.config import ServerConfig

# offline.join.engine.ENGINE_NAMES, spelled out so that parsing the command line imports nothing.
JOIN_ENGINES = ("local", "duckdb", "spark")


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def cmd_synth(args: argparse.Namespace) -> int:
    from offline.synth.world import PlantedExperiment, synthesize

    planted = None
    if args.experiment:
        planted = PlantedExperiment(
            args.experiment, args.arms, _lifts(args.lift), args.experiment_salt or ""
        )
    summary = synthesize(
        Path(args.out),
        users=args.users,
        days=args.days,
        seed=args.seed,
        start=args.start,
        rumors=args.rumors,
        mean_daily=args.mean_daily,
        progress=sys.stderr.isatty(),
        experiment=planted,
        reach=args.reach,
        cards=args.cards,
    )
    _print_json(summary)
    return 0


def _lifts(spec: str) -> dict[str, float]:
    """``treatment=0.2,other=-0.1`` -> {arm: relative lift}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        arm, _, value = part.partition("=")
        try:
            out[arm] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--lift wants arm=number, got {part!r}") from None
    return out


def cmd_experiment(args: argparse.Namespace) -> int:
    import time

    from domain.experiments import Experiment, ExperimentError, parse_arms
    from feature_store import experiments
    from feature_store.connection import redis_settings

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            if args.action == "create":
                if args.config:
                    exp = Experiment.from_json(Path(args.config).read_text())
                else:
                    if not (args.name and args.arms and args.end):
                        raise ExperimentError(
                            "create needs --config FILE, or NAME with --arms and --end"
                        )
                    start = args.start or time.time()
                    exp = Experiment(args.name, args.salt or args.name, parse_arms(args.arms),
                                     _when(start), _when(args.end), args.description)  # fmt: skip
                experiments.save(client, exp)
                _print_json(exp.to_dict())
            elif args.action == "list":
                _print_json({n: e.to_dict() for n, e in experiments.load_all(client).items()})
            elif args.action == "show":
                _print_json(experiments.load(client, _name(args)).to_dict())
            elif args.action == "stop":
                _print_json(experiments.stop(client, _name(args), time.time()).to_dict())
            elif args.action == "delete" and not experiments.delete(client, _name(args)):
                raise ExperimentError(f"no experiment named {args.name!r}")
        finally:
            client.close()
    return 0


def _name(args: argparse.Namespace) -> str:
    if not args.name:
        raise argparse.ArgumentTypeError(f"experiment {args.action} needs a NAME")
    return args.name


def _when(value: float | str) -> float:
    from domain.experiments import parse_time

    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from offline.report.reach import reach_report

    report = reach_report(
        Path(args.data), args.config or args.experiment, args.date_from, args.date_to,
        events=args.events, extra_tags=args.extra_tags, state_dir=args.state, audit=args.audit,
        attribution_days=args.attribution_days, alpha=args.alpha, n_boot=args.bootstrap,
        seed=args.seed,
    )  # fmt: skip
    out = report.write(Path(args.out))
    _print_json({"out": str(out), "headline": report.headline, "srm": report.srm,
                 "warnings": report.warnings,
                 "arms": report.arms[["arm", "exposed_users", "user_reach", "pair_reach"]]
                 .to_dict(orient="records"), **report.summary})  # fmt: skip
    return 1 if report.srm["mismatch"] and args.fail_on_srm else 0


def cmd_exposures(args: argparse.Namespace) -> int:
    from offline.io import catalog
    from offline.io.rejects import RejectWriter
    from offline.join.engine import write_exposures

    out = Path(args.out)
    engine = engine_from(args, work_dir=out)  # spills go under the output folder
    tags = catalog.load_tags(Path(args.tags))
    rejects = RejectWriter(out / "rejects.parquet")
    written = out / "exposures.parquet"
    summary = write_exposures(args.logs, tags, written, sink=rejects.add, engine=engine)
    rejected = rejects.close()
    _print_json({"output": str(written), "rejects": str(rejected or ""), **summary.as_dict()})
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from matching import Thresholds
    from offline.nightly.match import run_match

    default = Thresholds()  # the matcher's defaults, the ones the service matches with
    thresholds = Thresholds(
        high=default.high if args.high is None else args.high,
        low=default.low if args.low is None else args.low,
    )
    _print_json(run_match(Path(args.items), Path(args.library), Path(args.out), thresholds))
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    from feature_store.connection import redis_settings
    from offline.nightly.guards import FlipGuard
    from offline.nightly.job import run_nightly

    guard = FlipGuard(allow_shrink=args.allow_shrink)
    if args.max_shrink is not None:
        guard = FlipGuard(max_shrink=args.max_shrink, allow_shrink=args.allow_shrink)
    options = run_options(args)  # a bad combination fails before Redis starts
    with redis_settings() as settings:
        summary = run_nightly(
            Path(args.data),
            args.date,
            Path(args.state),
            settings,
            lookback_days=args.lookback_days,
            keep_versions=args.keep_versions,
            train=not args.no_train,
            guard=guard,
            engine=engine_from(args),
            **options,
        )
    _print_json(summary)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from offline.io import catalog
    from offline.nightly.job import train_night

    data = Path(args.data)
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    debunks = catalog.load_debunks(catalog.find_input(data, catalog.DEBUNK_FILES))
    state = Path(args.state) / "current" / "exposures.parquet"
    models = train_night(data, state, rumors, debunks, args.date, args.lookback_days)
    _print_json(models.summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from offline.models.evaluate import evaluate_at_risk, evaluate_ranker

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
    from offline.nightly.export_events import export_events

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            summary = export_events(
                client, Path(args.out), chunk=args.chunk, resume_from_ledger=args.resume_from_ledger
            )
        finally:
            client.close()
    if summary["lost_warning"]:
        print(f"WARNING: {summary['lost_warning']}", file=sys.stderr)
    _print_json(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from feature_store.connection import redis_settings
    from service.server import run_until_signalled

    if args.workers > 1 and args.port == 0:
        raise SystemExit("debunk serve: --workers needs a fixed --port to share")
    config = ServerConfig(
        host=args.host, port=args.port, poll_interval=args.poll_interval,
        tls_cert=args.tls_cert, tls_key=args.tls_key, metrics_port=args.metrics_port,
        drain_s=args.drain_s, grace_s=args.grace_s, unreachable_s=args.unreachable_s,
        policy=ServingPolicy(feed_daily_cap=args.feed_daily_cap),
    )  # fmt: skip
    with redis_settings() as settings:
        children = _spawn_workers(args, settings.url) if args.workers > 1 else []

        def pass_on() -> None:  # the workers drain at the same time as this process
            for child in children:
                child.send_signal(signal.SIGTERM)

        try:
            asyncio.run(run_until_signalled(settings, config, on_signal=pass_on))
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait(timeout=30)
    return 0


def _spawn_workers(args: argparse.Namespace, redis_url: str) -> list[subprocess.Popen[bytes]]:
    """Workers 2..N: each re-runs this process's own command line, so every flag holds in every
    worker, with only what is the worker's own put after it (the last of a flag wins): one
    worker each, metrics on the next ports, and the Redis this process resolved."""
    children = []
    for i in range(1, args.workers):
        own = ["--workers", "1"]
        if args.metrics_port:  # 0 (any free port) stays 0
            own += ["--metrics-port", str(args.metrics_port + i)]
        cmd = [sys.executable, "-m", "cli.main", *args.argv, *own]
        children.append(subprocess.Popen(cmd, env={**os.environ, "REDIS_URL": redis_url}))
    return children


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

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
    s.add_argument("--mean-daily", type=float, default=5.0, help="background rows per user-day")
    s.add_argument("--experiment", help="plant an A/B experiment with this name")
    s.add_argument("--arms", default="control:0.5,treatment:0.5", help="name:share[:policy],...")
    s.add_argument("--lift", default="", help="arm=relative serving lift, e.g. treatment=0.2")
    s.add_argument("--experiment-salt", default="", help="assignment salt (default: the name)")
    s.add_argument("--reach", type=float, default=0.2, help="rumor exposure rows per user")
    s.add_argument("--cards", type=int, default=1, help="debunks served per user and rumor")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("exposures", help="run the exposure join alone, to Parquet")
    s.add_argument("--logs", required=True, help="folder of dt=YYYY-MM-DD partitions (with "
                   "--engine spark also a Hadoop URI: s3a://, hdfs://, ...)")  # fmt: skip
    s.add_argument("--tags", required=True, help="tagged items (Parquet or CSV)")
    s.add_argument("--out", required=True, help="folder for exposures.parquet")
    engine_options(s, JOIN_ENGINES)
    s.set_defaults(func=cmd_exposures)

    s = sub.add_parser("match", help="tag item texts to library rumors; write a review queue")
    s.add_argument("--items", required=True, help="items.parquet (item_id, text)")
    s.add_argument("--library", required=True, help="folder with rumors.jsonl (or .parquet)")
    s.add_argument("--out", required=True, help="folder for matched_tags and review_queue")
    # No defaults here: the matcher's (matching.Thresholds), the ones the service uses.
    s.add_argument("--high", type=float, help="auto-tag at or above this score")
    s.add_argument("--low", type=float, help="review queue at or above this")
    s.set_defaults(func=cmd_match)

    s = sub.add_parser("nightly", help="join, then materialize a new snapshot into Redis")
    s.add_argument("--data", required=True, help="folder with the input contracts")
    s.add_argument("--date", required=True, type=_date, help="the night to run, YYYY-MM-DD")
    s.add_argument("--state", default=".debunk/state", help="folder for the job's outputs")
    s.add_argument("--lookback-days", type=int, default=30)
    s.add_argument("--keep-versions", type=int, default=2)
    s.add_argument("--no-train", action="store_true", help="skip the models (rules only)")
    s.add_argument(
        "--max-shrink",
        type=float,
        default=None,
        help="refuse a snapshot that drops more than this share of the served users or pairs "
        "(default 0.5)",
    )
    s.add_argument(
        "--allow-shrink",
        action="store_true",
        help="flip even an empty or shrunken snapshot (after a mass withdrawal, say)",
    )
    engine_options(s, JOIN_ENGINES)
    materialize_options(s)
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
    s.add_argument(
        "--resume-from-ledger",
        action="store_true",
        help="after a store rollback: move the store's cursor to what OUT already holds",
    )
    s.set_defaults(func=cmd_export_events)

    s = sub.add_parser("serve", help="run the gRPC service")
    serving = ServerConfig()  # the serving defaults live there, and only there
    s.add_argument("--host", default=os.environ.get("DEBUNK_HOST", serving.host))
    s.add_argument("--port", type=int, default=int(os.environ.get("DEBUNK_PORT", serving.port)))
    s.add_argument("--poll-interval", type=float, default=serving.poll_interval)
    s.add_argument(
        "--drain-s",
        type=float,
        default=serving.drain_s,
        help="after SIGTERM: seconds of health NOT_SERVING while still answering",
    )
    s.add_argument(
        "--unreachable-s",
        type=float,
        default=serving.unreachable_s,
        help="health turns NOT_SERVING once Redis has not answered for this long",
    )
    s.add_argument(
        "--grace-s",
        type=float,
        default=serving.grace_s,
        help="after the drain: seconds calls in flight may take to finish",
    )
    s.add_argument("--tls-cert", default=os.environ.get("DEBUNK_TLS_CERT", serving.tls_cert))
    s.add_argument("--tls-key", default=os.environ.get("DEBUNK_TLS_KEY", serving.tls_key))
    s.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    s.add_argument(
        "--metrics-port",
        type=int,
        default=serving.metrics_port,
        help="Prometheus /metrics port (worker i uses port + i)",
    )
    s.add_argument(
        "--feed-daily-cap",
        type=int,
        default=serving.policy.feed_daily_cap,
        help="feed cards a user may be served per UTC day",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("experiment", help="create, list, show, stop or delete experiments")
    s.add_argument("action", choices=["create", "list", "show", "stop", "delete"])
    s.add_argument("name", nargs="?")
    s.add_argument("--config", help="an experiment JSON (e.g. a synthetic world's experiment.json)")
    s.add_argument("--arms", help="name:share[:policy[:feed_daily_cap]],... policy: rules, "
                   "holdout, model")  # fmt: skip
    s.add_argument("--salt", help="assignment salt (default: the name)")
    s.add_argument("--start", help="ISO time (default: now)")
    s.add_argument("--end", help="ISO time")
    s.add_argument("--description", default="")
    s.set_defaults(func=cmd_experiment)

    s = sub.add_parser("report", help="the A/B reach report: tables, HTML with plots")
    s.add_argument("--experiment", required=True, help="experiment name (store or data folder)")
    s.add_argument("--config", help="experiment JSON instead of the store")
    s.add_argument("--from", dest="date_from", required=True, type=_date)
    s.add_argument("--to", dest="date_to", required=True, type=_date)
    s.add_argument("--data", required=True, help="folder with exposures/, rumors, tags")
    s.add_argument("--events", help="debunk events folder (default: DATA/debunk_events)")
    s.add_argument("--extra-tags", help="more tagged items, e.g. STATE/match/matched_tags.parquet")
    s.add_argument("--state", help="the nightly's state folder: its kept live overrides and "
                   "matched tags define exposure too")  # fmt: skip
    s.add_argument("--audit", help="an export-audit folder: live tag and rumor changes since")
    s.add_argument("--attribution-days", type=int, default=0,
                   help="count debunk impressions up to this many days after --to")  # fmt: skip
    s.add_argument("--alpha", type=float, default=0.05)
    s.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for times")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fail-on-srm", action="store_true", help="exit 1 on a sample ratio mismatch")
    s.add_argument("--out", required=True, help="folder for the tables and report.html")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("demo", help="the whole path end to end on the embedded Redis")
    s.add_argument("--workdir", default=".debunk/demo")
    s.add_argument("--users", type=int, default=20_000)
    s.add_argument("--days", type=int, default=7)
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)
    lifecycle.add_parsers(sub)  # rumor, tag, debunks, export-audit: the live catalog layer
    review.add_parsers(sub)  # review list|accept|reject, items add: the matcher's queue, live
    add_outbox_parsers(sub)  # notify, export-outbox
    add_ingest_parser(sub)  # ingest: live exposures from a Redis Stream
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what serve workers re-run
    logs.configure(args.log_level)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a clear one-line message for operators; details at debug level
        from domain.experiments import ExperimentError
        from offline.io.catalog import InputError
        from offline.io.logs import LogSchemaError
        from offline.join.spark_session import SparkUnavailable
        from offline.nightly.export_events import ExportError
        from offline.nightly.guards import NightlyRefused

        if isinstance(
            e, InputError | LogSchemaError | FileNotFoundError | ExperimentError | ExportError
            | NightlyRefused | SparkUnavailable | argparse.ArgumentTypeError,
        ):  # fmt: skip
            print(f"debunk {args.command}: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
