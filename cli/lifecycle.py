"""The operators' lifecycle commands: ``debunk rumor add|confirm|withdraw|update|show``, ``debunk
tag add|remove``, ``debunk debunks import``, ``debunk export-audit``. Each change goes into the
live catalog layer (``feature_store.live_changes``), which the running service merges within a
second; the next nightly folds it into the snapshot."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# The backfill a new tag or a confirmation triggers (``backfill_tag``; tests plug in others).
BACKFILL_MODULE = "offline.nightly.backfill"


def _print_json(obj: Any) -> None:
    """Print a command's summary as sorted JSON."""
    print(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def _actor(args: argparse.Namespace) -> str:
    """Who runs the command: --actor, else $USER, else the login name."""
    return args.actor or os.environ.get("USER") or getpass.getuser()


def _base_catalog(args: argparse.Namespace):
    """The library files of --data, the base before the first snapshot exists (None without)."""
    if not args.data:
        return None
    from domain.records import Catalog
    from offline.io import catalog

    data = Path(args.data)
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    debunks = catalog.load_debunks(catalog.find_input(data, catalog.DEBUNK_FILES))
    return Catalog.build(rumors, debunks)


def _run(args: argparse.Namespace, change) -> int:
    """Open the store, make one LiveEditor, run ``change(editor)``; clear errors exit 2."""
    from domain.ids import InvalidId
    from domain.rows import RecordError
    from feature_store.connection import redis_settings
    from feature_store.live_catalog import LiveConflict
    from feature_store.live_changes import LiveEditor, LiveError
    from offline.io.catalog import InputError

    try:
        prepared = args.prepare(args) if getattr(args, "prepare", None) else None
        with redis_settings() as settings:
            client = settings.sync_client()
            try:
                editor = LiveEditor(client, _actor(args), lambda: _base_catalog(args))
                out = change(editor, prepared)
                if getattr(args, "after", None) and out.get("changed"):
                    args.after(args, client, out)
            finally:
                client.close()
    except (LiveError, LiveConflict, InputError, RecordError, InvalidId, FileNotFoundError) as e:
        print(f"debunk {args.command} {args.verb}: {e}", file=sys.stderr)
        return 2
    (getattr(args, "show", None) or _print_json)(out)
    return 0


def _load_rumor_file(args: argparse.Namespace) -> list:
    """The rumors of FILE, each row through ``parse_rumor`` (a bad row fails the whole file)."""
    from offline.io.catalog import load_rumors

    return load_rumors(Path(args.file))


def _load_debunk_file(args: argparse.Namespace) -> list:
    """The debunks of FILE with the nightly's parser (a bad record fails the whole file)."""
    from offline.io.catalog import InputError, load_debunks

    path = Path(args.file)
    if path.suffix not in (".jsonld", ".json", ".jsonl", ".csv"):
        raise InputError(f"{path}: debunks come as .jsonld/.json, .jsonl or .csv")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return load_debunks(path)


def cmd_rumor(args: argparse.Namespace) -> int:
    """``debunk rumor add|confirm|withdraw|update|show``."""
    if args.verb == "show":
        return cmd_rumor_show(args)
    if args.verb == "add":
        args.prepare = _load_rumor_file
        return _run(args, lambda e, rumors: e.add_rumors(rumors).as_dict())
    if args.verb == "confirm":
        args.after = _confirmed  # its audience targetable at once, its spreaders notified
        return _run(args, lambda e, _: e.set_status(args.id, "confirmed").as_dict())
    if args.verb == "withdraw":
        return _run(args, lambda e, _: e.set_status(args.id, "withdrawn", args.reason).as_dict())
    fields = {
        f: getattr(args, f) for f in ("verdict", "severity", "claim", "category", "confirmed_at")
        if getattr(args, f) is not None
    }  # fmt: skip
    for f in ("keywords", "aliases"):
        if getattr(args, f) is not None:
            fields[f] = getattr(args, f)
    if "verdict" in fields:
        args.after = _verdict_changed
    return _run(args, lambda e, _: e.update_rumor(args.id, fields).as_dict())


def cmd_tag(args: argparse.Namespace) -> int:
    """``debunk tag add|remove``."""
    if args.verb == "add":
        args.after = _backfill
        return _run(args, lambda e, _: e.tag(args.item_id, args.rumor_id, args.source,
                                             args.score).as_dict())  # fmt: skip
    return _run(args, lambda e, _: e.untag(args.item_id, args.rumor_id).as_dict())


def _backfill(args: argparse.Namespace, client, out: dict[str, Any]) -> None:
    """After a new tag: the backfill of the tagged item (``backfill``) goes under ``backfill``."""
    items = [args.item_id] if getattr(args, "item_id", None) else []
    out["backfill"] = backfill(args, client, items, getattr(args, "rumor_id", None) or args.id)


def _confirmed(args: argparse.Namespace, client, out: dict[str, Any]) -> None:
    """After a confirmation: the rumor's audience backfilled (all its items), then its sharers
    and commenters notified, those the backfill found included (issue 18, item 5)."""
    found: list = []
    out["backfill"] = backfill(args, client, [], args.id, on_states=found.append)
    out["notify"] = notify(args, client, args.id, "confirmed", found)


def _verdict_changed(args: argparse.Namespace, client, out: dict[str, Any]) -> None:
    """After a verdict change: the spreaders not yet notified of the rumor are."""
    out["notify"] = notify(args, client, args.id, "verdict_changed", [])


def notify(args: argparse.Namespace, client, rumor_id: str, reason: str, states: list) -> Any:
    """``notify_spreaders`` of ``rumor_id`` (with the spreaders of backfilled ``states``), or
    why not (--no-notify, no state yet, no debunk): the change itself is applied either way."""
    if getattr(args, "no_notify", False):
        return "skipped: --no-notify"
    from offline.live.notify import NotifyError, notify_spreaders, spread_records

    extra = [r for table in states for r in spread_records(table)]
    try:
        return notify_spreaders(client, Path(args.state), rumor_id, reason, _now(args), extra=extra)
    except NotifyError as e:
        return f"not notified: {e}"


def backfill(
    args: argparse.Namespace, client, items: list[str], rumor_id: str, **options: Any
) -> Any:
    """``BACKFILL_MODULE.backfill_tag`` of ``items`` newly tagged with ``rumor_id`` (all of the
    rumor's items when empty), or why not: the module is absent, --data is not given, or its
    error (the change itself is applied; the next nightly covers it)."""
    try:
        module = importlib.import_module(BACKFILL_MODULE)
    except ModuleNotFoundError as e:
        if not BACKFILL_MODULE.startswith(str(e.name)):
            raise
        return "not available"
    if not args.data:
        return "skipped: needs --data (the exposure logs)"
    try:
        return module.backfill_tag(
            Path(args.data), Path(args.state), items, rumor_id, client, _now(args), **options
        )
    except Exception as e:  # the change is in; the backfill is an optimisation of the night
        print(f"debunk {args.command} {args.verb}: backfill failed: {e}", file=sys.stderr)
        return {"error": f"{type(e).__name__}: {e}"}


def cmd_debunks(args: argparse.Namespace) -> int:
    """``debunk debunks import FILE``."""
    args.prepare = _load_debunk_file
    return _run(args, lambda e, debunks: e.import_debunks(debunks).as_dict())


def cmd_rumor_show(args: argparse.Namespace) -> int:
    """``debunk rumor show ID``: read only."""
    from feature_store.live_changes import LiveEditor, LiveError
    from offline.report.rumor_status import rumor_show

    def show(editor: LiveEditor, _: Any) -> dict[str, Any]:
        """The report, or LiveError for an unknown id."""
        if args.id not in editor.catalog.rumors:
            raise LiveError(f"no rumor {args.id!r} in the snapshot or the live layer")
        state = Path(args.state) if args.state else None
        return rumor_show(editor, args.id, state, Path(args.data) if args.data else None)

    return _run(args, show)


def cmd_export_audit(args: argparse.Namespace) -> int:
    """``debunk export-audit --out DIR``."""
    from feature_store.connection import redis_settings
    from offline.nightly.export_audit import export_audit

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            _print_json(export_audit(client, Path(args.out)))
        finally:
            client.close()
    return 0


def _common(s: argparse.ArgumentParser) -> None:
    """The options every lifecycle command takes (as nightly: --data, --state)."""
    s.add_argument("--data", help="folder with the library files: the base before a snapshot")
    s.add_argument("--state", default=".debunk/state", help="the nightly's state folder")
    s.add_argument("--actor", help="who makes the change, for the audit log (default: $USER)")
    s.add_argument("--now", type=_iso_time,
                   help="ISO 8601 time the backfill and notices act at (default: now)")  # fmt: skip


def _iso_time(text: str) -> str:
    """An argparse type: ``text`` if it is an ISO 8601 time (a clear error otherwise)."""
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return text


def _now(args: argparse.Namespace) -> float:
    """The time a command acts at: --now (ISO 8601, UTC unless it says) or the clock."""
    when = getattr(args, "now", None)
    if not when:
        return time.time()
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(when)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _notify_option(s: argparse.ArgumentParser) -> None:
    """--no-notify: change without notifying the rumor's spreaders (``debunk notify`` later)."""
    s.add_argument("--no-notify", action="store_true", dest="no_notify",
                   help="do not notify the rumor's sharers and commenters")  # fmt: skip


def add_parsers(sub) -> None:
    """Register the lifecycle commands on the ``debunk`` parser's subcommands."""
    rumor = sub.add_parser("rumor", help="add, confirm, withdraw, update or show rumors (live)")
    verbs = rumor.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("add", help="add rumors from a JSON Lines file of the rumor contract")
    s.add_argument("file")
    for verb in ("confirm", "withdraw", "show"):
        s = verbs.add_parser(verb, help=f"{verb} one rumor")
        s.add_argument("id")
        if verb == "withdraw":
            s.add_argument("--reason", default="", help="why, for the audit log")
        if verb == "confirm":
            _notify_option(s)
    s = verbs.add_parser("update", help="set a rumor's verdict, severity, claim, ...")
    s.add_argument("id")
    s.add_argument("--verdict")
    s.add_argument("--severity")
    s.add_argument("--claim")
    s.add_argument("--category")
    s.add_argument("--confirmed-at", dest="confirmed_at")
    s.add_argument("--keywords", help="comma-separated")
    s.add_argument("--aliases", help="comma-separated")
    _notify_option(s)
    for s in verbs.choices.values():
        _common(s)
    rumor.set_defaults(func=cmd_rumor)

    tag = sub.add_parser("tag", help="tag an item with a rumor, or take the tag off (live)")
    verbs = tag.add_subparsers(dest="verb", required=True)
    for verb in ("add", "remove"):
        s = verbs.add_parser(verb, help=f"{verb} one item's tag")
        s.add_argument("item_id")
        s.add_argument("rumor_id")
        if verb == "add":
            s.add_argument("--source", default="manual", help="manual or matched")
            s.add_argument("--score", type=float, default=1.0)
        _common(s)
    tag.set_defaults(func=cmd_tag)

    debunks = sub.add_parser("debunks", help="import debunks (live)")
    verbs = debunks.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("import", help="ClaimReview JSON-LD, JSON Lines or CSV")
    s.add_argument("file")
    _common(s)
    debunks.set_defaults(func=cmd_debunks)

    s = sub.add_parser("export-audit", help="export the live layer's audit stream to Parquet")
    s.add_argument("--out", required=True, help="folder for the audit Parquet files")
    s.set_defaults(func=cmd_export_audit)


# What the review commands (cli/review.py) share with these: one store session, one option set.
run_change = _run
common_options = _common
