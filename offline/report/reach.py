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
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.experiments import Experiment
from offline.io import catalog
from offline.progress import RowProgress
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
from offline.report.surfaces import reach_by_surface
from offline.report.tables import TABLES, ReachTables


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
) -> ReachReport:
    """Every table of the report from the pair outcomes (pure: no IO)."""
    pairs = outcomes.pairs
    users = per_user(pairs, experiment)
    ttd = seconds_between(pairs["debunked_ts"], pairs["first_ts"])
    srm = srm_check(users, experiment)
    warnings = []
    if srm["mismatch"]:
        warnings.append(
            f"SAMPLE RATIO MISMATCH: exposed users per arm {srm['counts']} do not fit the "
            f"configured shares (chi2={srm['chi2']:.1f}, p={srm['p_value']:.2g} < {SRM_ALPHA}); "
            "do not trust the comparisons until the cause is found"
        )
    mislabelled = label_mismatches(outcomes.labels, experiment)
    if mislabelled:
        warnings.append(
            f"{mislabelled} users have events labelled with an arm the experiment's hash does "
            "not give them: the service and this report disagree on assignment"
        )
    if not pairs.num_rows:
        warnings.append("no exposed pairs in the window: nothing to compare")
    return ReachReport(
        experiment=experiment,
        date_from=date_from,
        date_to=date_to,
        arms=arm_table(users, ttd, experiment, alpha, n_boot, seed),
        comparisons=comparison_table(users, experiment, alpha),
        rumors=rumor_table(pairs, users, ttd, experiment, alpha),
        daily=daily_table(pairs, users, experiment, day_range(date_from, date_to), alpha),
        time_to_debunk=time_table(users, ttd, experiment),
        srm=srm,
        warnings=warnings,
        summary={**outcomes.summary, "alpha": alpha, "label_mismatched_users": mislabelled},
        outcomes=outcomes,
    )


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


def confirmed_tags(data: Path, extra_tags: Path | None = None) -> pa.Table:
    """Tagged items (plus the nightly's auto-matched ones) of confirmed rumors only."""
    rumors = catalog.load_rumors(catalog.find_input(data, catalog.RUMOR_FILES))
    tags = catalog.load_tags(catalog.find_input(data, catalog.TAG_FILES))
    if extra_tags is not None and extra_tags.exists():
        tags = pa.concat_tables([tags, catalog.load_tags(extra_tags)])
    confirmed = pa.array(sorted(r.rumor_id for r in rumors if r.confirmed), pa.string())
    return tags.filter(pc.is_in(tags["rumor_id"], value_set=confirmed))


def reach_report(
    data: str | Path,
    experiment: Experiment | str | Path,
    date_from: date | str,
    date_to: date | str,
    *,
    events: str | Path | None = None,
    extra_tags: str | Path | None = None,
    attribution_days: int = 0,
    alpha: float = 0.05,
    n_boot: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> ReachReport:
    """The reach report of ``experiment`` (a config, a JSON file or a name in the store) over
    the days ``date_from``..``date_to`` of the input folder ``data`` (exposures/, rumors, tags;
    debunk events under ``data/debunk_events`` unless ``events`` says otherwise)."""
    data = Path(data)
    d1, d2 = (date.fromisoformat(d) if isinstance(d, str) else d for d in (date_from, date_to))
    if d2 < d1:
        raise ValueError(f"--to {d2} is before --from {d1}")
    exp = _experiment(experiment, data)
    tags = confirmed_tags(data, Path(extra_tags) if extra_tags else None)
    events_dir = Path(events) if events else data / "debunk_events"
    window = window_of(exp.start, exp.end, d1, d2)
    label = f"reach {exp.name}"
    show = sys.stderr.isatty() if progress is None else progress
    with RowProgress(0, label) if show else _Quiet() as bar:
        outcomes = collect(
            data / "exposures", events_dir, tags, window, d1, d2, exp.name,
            attribution_days=attribution_days, on_batch=bar.advance,
        )  # fmt: skip
    report = analyze(outcomes, exp, d1, d2, alpha=alpha, n_boot=n_boot, seed=seed)
    event_days = day_range(d1, d2 + timedelta(days=attribution_days))
    report.summary["reach_by_surface"] = reach_by_surface(events_dir, event_days, outcomes.pairs)
    for w in report.warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    return report


class _Quiet:
    def advance(self, rows: int) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
