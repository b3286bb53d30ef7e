"""The A/B reach report: of the users who saw a rumor, how many saw its debunk, how soon, and did
they stop spreading it, per experiment arm, with intervals an analyst can defend.

    from offline.report.reach import reach_report
    report = reach_report("world/", "ab1", date(2026, 10, 1), date(2026, 10, 30))
    report.arms, report.comparisons, report.rumors, report.daily  # pandas DataFrames

Units: a user is the randomisation unit, so every ratio is clustered by user (delta method);
user-level proportions get Wilson intervals. Arms are recomputed from the experiment's hash for
every exposed user, served or not.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from domain.experiments import Experiment
from offline.progress import RowProgress
from offline.report.exposure_scope import exposure_scope
from offline.report.html import render
from offline.report.metrics import (
    SRM_ALPHA,
    arm_table,
    comparison_table,
    daily_table,
    label_mismatches,
    per_user,
    rumor_table,
    srm_check,
    time_table,
)
from offline.report.outcomes import Outcomes, collect, day_range, seconds_between, window_of
from offline.report.scorecard import headline, scorecard
from offline.report.surfaces import reach_by_surface
from offline.report.tables import TABLES, ReachTables
from offline.report.updates import updates_by_arm


class ReachReport(ReachTables):
    """The report's tables with the means to write them out as a folder."""

    def write(self, out: Path) -> Path:
        """Parquet and CSV per table, summary.json and report.html into ``out``, atomically:
        written aside, then swapped in, so readers never see half a report."""
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in TABLES:
            frame = getattr(self, name)
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet"
            )
            frame.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps(self.summary_dict(), indent=2, default=str))
        (tmp / "report.html").write_text(render(self), encoding="utf-8")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return out


def analyze(
    outcomes: Outcomes,
    experiment: Experiment,
    date_from: date,
    date_to: date,
    *,
    alpha: float = 0.05,
    n_boot: int = 200,
    seed: int = 0,
    claims: dict[str, str] | None = None,
    planted: dict[str, Any] | None = None,
) -> ReachReport:
    """Every table of the report from the pair outcomes (pure: no IO); ``claims`` names the
    rumors, ``planted`` is a synthetic world's planted truth (shown beside the estimates)."""
    pairs = outcomes.pairs
    users = per_user(pairs, experiment)
    ttd = seconds_between(pairs["debunked_ts"], pairs["first_ts"])
    srm = srm_check(users, experiment)
    warnings = []
    if srm["mismatch"]:
        warnings.append(
            f"SAMPLE RATIO MISMATCH: exposed users per arm ({_per_arm(srm['counts'])}) do not "
            f"fit the configured shares ({_per_arm(srm['expected_shares'])}; chi2="
            f"{srm['chi2']:.1f}, p={srm['p_value']:.2g} < {SRM_ALPHA}); "
            "do not trust the comparisons until the cause is found"
        )
    mislabelled, mislabelled_events = label_mismatches(outcomes.labels, experiment)
    if mislabelled:
        warnings.append(
            f"{mislabelled} users ({mislabelled_events} events) have events labelled with an arm "
            "the experiment's hash does not give them: the service and this report disagree on "
            "assignment"
        )
    if not pairs.num_rows:
        warnings.append("no exposed pairs in the window: nothing to compare")
    arms = arm_table(users, ttd, experiment, alpha, n_boot, seed)
    comparisons = comparison_table(users, experiment, alpha)
    card = scorecard(arms, comparisons, experiment, alpha, planted)
    return ReachReport(
        experiment=experiment,
        date_from=date_from,
        date_to=date_to,
        arms=arms,
        comparisons=comparisons,
        rumors=rumor_table(pairs, users, ttd, experiment, alpha, claims),
        daily=daily_table(pairs, users, experiment, day_range(date_from, date_to), alpha),
        time_to_debunk=time_table(users, ttd, experiment),
        srm=srm,
        warnings=warnings,
        summary={
            **outcomes.summary,
            "alpha": alpha,
            "label_mismatched_users": mislabelled,
            "label_mismatched_events": mislabelled_events,
            "time_rule": "events at or after the pair's first exposure",
            **({"planted": planted} if planted else {}),
        },  # fmt: skip
        outcomes=outcomes,
        scorecard=card,
        headline=headline(card, srm, alpha),
    )


def _per_arm(values: dict[str, Any]) -> str:
    """Per-arm values in words: 'control 1618, treatment 1722'."""
    return ", ".join(f"{arm} {value:g}" for arm, value in values.items())


# --- the entry point ---------------------------------------------------------------------------


def _experiment(value: Experiment | str | Path, data: Path) -> Experiment:
    if isinstance(value, Experiment):
        return value
    path = Path(value)
    if path.suffix == ".json" and path.exists():
        return Experiment.from_json(path.read_text())
    planted = data / "experiment.json"
    if planted.exists():
        exp = Experiment.from_json(planted.read_text())
        if exp.name == str(value):
            return exp
    from feature_store import experiments
    from feature_store.connection import redis_settings

    with redis_settings() as settings:
        client = settings.sync_client()
        try:
            return experiments.load(client, str(value))
        finally:
            client.close()


def _planted(value: Experiment | str | Path, data: Path, exp: Experiment) -> dict[str, Any] | None:
    """The planted truth of a synthetic world's experiment file, when the config came from one."""
    path = Path(value) if not isinstance(value, Experiment) else None
    if path is None or not (path.suffix == ".json" and path.exists()):
        path = data / "experiment.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    planted = raw.get("planted") if raw.get("name") == exp.name else None
    return planted if isinstance(planted, dict) else None


def confirmed_tags(data: Path, extra_tags: Path | None = None) -> pa.Table:
    """Tagged items of the input files (plus ``extra_tags``) of confirmed rumors only, under
    the nightly's tag precedence (``exposure_scope`` adds what was served live)."""
    return exposure_scope(data, extra_tags=extra_tags).tags


def reach_report(
    data: str | Path,
    experiment: Experiment | str | Path,
    date_from: date | str,
    date_to: date | str,
    *,
    events: str | Path | None = None,
    extra_tags: str | Path | None = None,
    state_dir: str | Path | None = None,
    audit: str | Path | None = None,
    attribution_days: int = 0,
    alpha: float = 0.05,
    n_boot: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> ReachReport:
    """The reach report of ``experiment`` (a config, a JSON file or a name in the store) over
    the days ``date_from``..``date_to`` of the input folder ``data`` (exposures/, rumors, tags;
    debunk events under ``data/debunk_events`` unless ``events`` says otherwise). With
    ``state_dir`` (the nightly's) and ``audit`` (an ``export-audit`` folder), exposure follows
    the tags and rumor statuses the system served from (``exposure_scope.py``)."""
    data = Path(data)
    d1, d2 = (date.fromisoformat(d) if isinstance(d, str) else d for d in (date_from, date_to))
    if d2 < d1:
        raise ValueError(f"--to {d2} is before --from {d1}")
    exp = _experiment(experiment, data)
    event_days = day_range(d1, d2 + timedelta(days=attribution_days))
    until = datetime.combine(d2 + timedelta(days=attribution_days + 1), time(), UTC)
    scope = exposure_scope(
        data, state_dir=_path(state_dir), audit_dir=_path(audit), extra_tags=_path(extra_tags),
        until=until,
    )  # fmt: skip
    events_dir = Path(events) if events else data / "debunk_events"
    window = window_of(exp.start, exp.end, d1, d2)
    label = f"reach {exp.name}"
    show = sys.stderr.isatty() if progress is None else progress
    with RowProgress(0, label) if show else _Quiet() as bar:
        outcomes = collect(
            data / "exposures", events_dir, scope.tags, window, d1, d2, exp.name,
            attribution_days=attribution_days, on_batch=bar.advance,
        )  # fmt: skip
    report = analyze(outcomes, exp, d1, d2, alpha=alpha, n_boot=n_boot, seed=seed,
                     claims=scope.claims, planted=_planted(experiment, data, exp))  # fmt: skip
    report.summary["exposure_scope"] = scope.summary
    report.summary["window"] = {
        "from": datetime.fromtimestamp(window[0], UTC).isoformat(),
        "to": datetime.fromtimestamp(window[1], UTC).isoformat(),
        "events_until": until.isoformat(),
        "attribution_days": attribution_days,
    }
    report.summary["reach_by_surface"] = reach_by_surface(events_dir, event_days, outcomes.pairs)
    report.summary["updates"] = updates_by_arm(events_dir, event_days, outcomes.pairs, exp)
    for w in report.warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    return report


def _path(value: str | Path | None) -> Path | None:
    """An optional path argument as a Path."""
    return Path(value) if value else None


class _Quiet:
    def advance(self, rows: int) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
