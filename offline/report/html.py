"""The reach report as one self-contained HTML page that works offline: the headline and the
scorecard on top, the charts, the scope and data-quality section, then the tables, with numbers
formatted for people (the raw numbers are in the Parquet/CSV tables beside it).

Page contract (checked by the browser test): ``id="headline"`` holds the one-sentence answer,
``id="scorecard"`` the scorecard, ``id="scope"`` the scope section; every chart is an
``<img class="chart">`` (data: URI) or an ``<svg class="chart">``; every table has a caption and
sits in a ``<div class="table-frame">`` that scrolls on its own, so the page never does."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd

from offline.report import formatting as fmt
from offline.report.charts import interval_bar, plot_daily, plot_rumors, plot_time
from offline.report.scorecard import METRICS
from offline.report.tables import ReachTables

TOP_RUMOR_ROWS = 100
_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1.5em 2em;max-width:1200px;color:#222;
line-height:1.4}
h1{margin:.2em 0 .4em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.table-frame{overflow-x:auto;max-width:100%;margin:.8em 0}
table{border-collapse:collapse;font-size:13px}
caption{text-align:left;font-weight:600;padding:.3em 0;caption-side:top}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap;
vertical-align:top}
th{background:#f3f3f3} td.text,th.text{text-align:left}
td.wrap{white-space:normal;min-width:11em;max-width:30em}
.ci{display:block;color:#666;font-size:11px}
tr.group td{border-top:2px solid #999}
.headline{font-size:1.35em;font-weight:600;background:#eef4ff;border-left:6px solid #3367d6;
padding:.6em .9em;margin:.8em 0}
.alarm{background:#b00020;color:#fff;padding:1em;font-weight:bold;font-size:1.1em}
.ok{background:#e7f5e9;padding:.6em}
.warn{background:#fff4d6;padding:.6em;margin:.3em 0}
.na{color:#777;font-style:italic}
.note{color:#555;font-size:.92em}
img.chart{max-width:100%;height:auto;display:block;margin:.5em 0}
svg.bar{vertical-align:middle}
"""


def _cell(value: Any, cls: str = "") -> str:
    """One table cell, escaped; a (value, interval) pair shows the interval small beneath; a
    dash or a 'does not apply' shows greyed."""
    ci = ""
    if isinstance(value, tuple):
        value, interval = value
        ci = f'<span class="ci">{html.escape(interval)}</span>' if interval else ""
    text = str(value)
    na = text == fmt.DASH or text.startswith("does not apply")
    classes = " ".join(c for c in (cls, "na" if na else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{text if text.startswith('<svg') else html.escape(text)}{ci}</td>"


def table(
    caption: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    text_columns: Sequence[int] = (0,),
    wrap_columns: Sequence[int] = (),
    group_rows: Sequence[int] = (),
) -> str:
    """A captioned table in its own horizontally scrolling frame; ``text_columns`` are left
    aligned, ``wrap_columns`` may wrap, ``group_rows`` start a visual group."""

    def cls(j: int) -> str:
        """The classes of column ``j``."""
        return " ".join(n for n, on in (("text", j in text_columns), ("wrap", j in wrap_columns))
                        if on)  # fmt: skip

    head = "".join(f'<th class="{cls(j)}">{html.escape(h)}</th>' for j, h in enumerate(headers))
    body = "".join(
        ('<tr class="group">' if i in group_rows else "<tr>")
        + "".join(_cell(v, cls(j)) for j, v in enumerate(row))
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return (
        f'<div class="table-frame"><table><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _value(v: float, unit: str) -> str:
    """A scorecard value in its unit."""
    return fmt.hours(v) if unit == "hours" else fmt.pct(v)


def _difference(v: float, unit: str) -> str:
    """A difference against control in its unit."""
    return fmt.hours_delta(v) if unit == "hours" else fmt.points(v)


def _with_interval(text: str, lo: float, hi: float, unit: str) -> str | tuple[str, str]:
    """A value and its interval for one cell: ('70.3%', '[68.0%, 72.4%]')."""
    if not text or text == fmt.DASH:
        return text
    return text, fmt.interval(lo, hi, unit)


def scorecard_section(report: ReachTables) -> str:
    """The scorecard: per arm and metric, value and interval, difference and lift against
    control with interval bars on one scale, significance in words, the planted effect."""
    card = report.scorecard
    tested = card[card["note"] == ""]
    lifts = tested[["rel_lift_lo", "rel_lift_hi", "planted_rel_lift"]].to_numpy(dtype=float)
    lifts = lifts[pd.notna(lifts)].clip(-1, 3)
    lifts = lifts.clip(-1, 1)  # wider intervals run off the bar's end
    span = (min(-0.1, float(lifts.min())), max(0.1, float(lifts.max()))) if len(lifts) else (-1, 1)
    planted = card["planted_rel_lift"].notna().any()
    rows, groups, last = [], [], None
    for row in card.to_dict(orient="records"):
        if row["arm"] != last:
            groups.append(len(rows))
        unit = row["unit"]
        arm = row["arm"] if row["arm"] != last else ""
        last = row["arm"]
        diff = _difference(row["diff"], unit) if pd.notna(row["diff"]) else ""
        rel = fmt.lift(row["rel_lift"]) if pd.notna(row["rel_lift"]) else ""
        bar = ""
        if not row["note"]:
            bar = interval_bar(row["rel_lift_lo"], row["rel_lift_hi"], row["rel_lift"], span,
                               row["planted_rel_lift"])  # fmt: skip
        cells = [
            arm,
            row["measure"],
            _with_interval(_value(row["value"], unit), row["lo"], row["hi"], unit),
            _with_interval(
                diff, row["diff_lo"], row["diff_hi"], "hours" if unit == "hours" else "points"
            ),  # fmt: skip
            rel
            if row["note"]
            else _with_interval(rel, row["rel_lift_lo"], row["rel_lift_hi"], "lift"),  # fmt: skip
            bar,
            row["note"] or row["significance"],
        ]
        if planted:
            cells.append(fmt.lift(row["planted_rel_lift"]) if pd.notna(row["planted_rel_lift"])
                         else "")  # fmt: skip
        rows.append(cells)
    headers = ["Arm", "Measure", "Value", "Difference vs control", "Relative lift",
               f"Lift interval ({fmt.lift(span[0])} … {fmt.lift(span[1])})",
               "Significance"]  # fmt: skip
    if planted:
        headers.append("Planted")
    control = report.experiment.control.name
    return (
        '<section id="scorecard"><h2>Scorecard</h2>'
        + table(
            f"Every arm against {control}, per metric (intervals 95%)",
            headers,
            rows,
            text_columns=(0, 1, 6),
            wrap_columns=(6,),
            group_rows=groups,
        )  # fmt: skip
        + '<p class="note">User reach: share of exposed users who saw a debunk of a rumor they '
        "were exposed to (Wilson interval; pooled two-proportion z-test). Pair reach, "
        "click-through and re-share: ratios clustered by user (delta method). Relative lift: "
        "delta method on the log ratio; the bars share one scale, the grey line is no change, "
        "a red tick is the effect a synthetic world planted. "
        "Times: user-clustered bootstrap, not tested. "
        f"Significant means p &lt; {report.summary.get('alpha', 0.05):g}.</p></section>"
    )


def srm_banner(srm: dict[str, Any], arms: Sequence[str]) -> str:
    """The sample-ratio verdict in words: counts and shares per arm, chi-square and p."""
    counts = ", ".join(
        f"{html.escape(a)} {fmt.count(srm['counts'].get(a))} (expected {fmt.pct(srm['expected_shares'].get(a), 0)})"  # noqa: E501
        for a in arms
    )
    stat = f"χ² = {fmt.number(srm['chi2'], 3)}, {fmt.p_value(srm['p_value'])}"
    if srm["mismatch"]:
        return (
            f'<div class="alarm">SAMPLE RATIO MISMATCH ({stat}): exposed users per arm — '
            f"{counts} — do not fit the configured shares. Do not trust the comparisons below "
            "until the cause is found.</div>"
        )
    return f'<div class="ok">Sample ratio check passed: exposed users {counts} ({stat}).</div>'


def _when(iso: str | None) -> str:
    """An ISO UTC time as 'YYYY-MM-DD HH:MM UTC'."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else fmt.DASH


def _share(n: int, total: int) -> str:
    """n as a share of total."""
    return fmt.pct(n / total) if total else fmt.DASH


def scope_section(report: ReachTables) -> str:
    """What defines exposure, which debunk traffic falls outside it, and the data quality."""
    s = report.summary
    scope = s.get("exposure_scope", {})
    tags = scope.get("tags", {})
    sources = {"input": "tag file of the input folder", "overrides": "live changes kept by "
               "the nightly (--state)", "live": "live changes since, from the audit (--audit)",
               "matched": "the matcher's tags (--state match, --extra-tags)"}  # fmt: skip
    tag_rows = [[name, sources.get(name, ""), fmt.count(n)] for name, n in tags.items()]
    tag_rows.append(["total", "tags that define exposure", fmt.count(sum(tags.values()))])
    ev = s.get("event_scope", {})
    imps = sum(ev.get(k, 0) for k in ("impressions_after_exposure", "impressions_before_exposure",
                                      "impressions_outside_pairs"))  # fmt: skip
    clicks = sum(ev.get(k, 0) for k in ("clicks_after_exposure", "clicks_before_exposure",
                                        "clicks_outside_pairs"))  # fmt: skip
    event_rows = [
        ["counted: exposed pairs, at or after the first exposure",
         fmt.count(ev.get("impressions_after_exposure")),
         _share(ev.get("impressions_after_exposure", 0), imps),
         fmt.count(ev.get("clicks_after_exposure"))],
        ["not counted: exposed pairs, before the first exposure",
         fmt.count(ev.get("impressions_before_exposure")),
         _share(ev.get("impressions_before_exposure", 0), imps),
         fmt.count(ev.get("clicks_before_exposure"))],
        ["not counted: pairs not exposed in the window (untagged variants, earlier exposure, "
         "other rumors)", fmt.count(ev.get("impressions_outside_pairs")),
         _share(ev.get("impressions_outside_pairs", 0), imps),
         fmt.count(ev.get("clicks_outside_pairs"))],
        ["all debunk events with a rumor id", fmt.count(imps), _share(imps, imps),
         fmt.count(clicks)],
        ["events without a rumor id (left out)", fmt.count(ev.get("impressions_without_rumor")),
         "", ""],
    ]  # fmt: skip
    window = s.get("window", {})
    quality_rows = [
        ["first exposures counted", f"{_when(window.get('from'))} to {_when(window.get('to'))} "
         "(the experiment's window within the report's days; end exclusive)"],
        ["debunk events read until", f"{_when(window.get('events_until'))} (end exclusive)"],
        ["attribution days after the last day", str(window.get("attribution_days", 0))],
        ["time rule", "reach, impressions, clicks and CTR count debunk events at or after the "
         "pair's first exposure in the window"],
        ["tag time", f"a tag counts for the {scope.get('tag_time', 'whole window')}"],
        ["confirmed rumors", fmt.count(scope.get("confirmed_rumors", 0))],
        ["events whose arm label disagrees with the hash",
         f"{fmt.count(s.get('label_mismatched_events', 0))} events of "
         f"{fmt.count(s.get('label_mismatched_users', 0))} users"],
        ["exposure rows read / kept", f"{fmt.count(s.get('exposure_rows_read', 0))} / "
         f"{fmt.count(s.get('exposure_rows_kept', 0))}"],
        ["exposure rows rejected", ", ".join(f"{k}: {fmt.count(v)}" for k, v in
                                             s.get("exposure_rows_rejected", {}).items()) or "0"],
        ["debunk event rows read", fmt.count(s.get("event_rows_read", 0))],
    ]  # fmt: skip
    outside = ev.get("impressions_outside_pairs", 0)
    return (
        '<section id="scope"><h2>Scope and data quality</h2>'
        f"<p>Exposure is defined by the tags below: a user is exposed to a rumor when an item "
        f"tagged with it reached them. {_share(outside, imps)} of the debunk impressions "
        f"({fmt.count(outside)} of {fmt.count(imps)}) fell on pairs outside the exposed ones "
        "and count in neither numerator nor denominator; impressions before a pair's first "
        "exposure count nowhere.</p>"
        + table(
            "Tags that define exposure, by source",
            ["Source", "What", "Tags"],
            tag_rows,
            text_columns=(0, 1),
        )  # fmt: skip
        + table(
            "Debunk impressions and clicks: inside and outside the scope",
            ["Events", "Impressions", "Share", "Clicks"],
            event_rows,
            wrap_columns=(0,),
        )  # fmt: skip
        + table(
            "Window, attribution and data quality",
            ["Item", "Value"],
            quality_rows,
            text_columns=(0, 1),
            wrap_columns=(1,),
        )  # fmt: skip
        + "</section>"
    )


def raw_tables(report: ReachTables) -> str:
    """The arms, comparisons, surfaces and per-rumor tables, grouped to fit the page."""
    arms = report.arms.to_dict(orient="records")
    counts = [[a["arm"], a["policy"], fmt.pct(a["share"], 0), fmt.count(a["exposed_users"]),
               fmt.count(a["exposed_pairs"]), fmt.count(a["reached_users"]),
               fmt.count(a["reached_pairs"]), fmt.count(a["impressions"]),
               fmt.count(a["clicks"])] for a in arms]  # fmt: skip

    def est(a: dict[str, Any], name: str, unit: str = "share") -> str:
        """An arm's estimate and interval in one cell, or 'does not apply'."""
        value = fmt.hours(a[name]) if unit == "hours" else fmt.pct(a[name])
        if value == fmt.DASH:
            return "does not apply"
        return f"{value} {fmt.interval(a[f'{name}_lo'], a[f'{name}_hi'], unit)}".strip()

    rates = [[a["arm"], est(a, "user_reach"), est(a, "pair_reach"), est(a, "ctr"),
              est(a, "reshare_after_debunk"), est(a, "hours_to_debunk_p50", "hours"),
              est(a, "hours_to_debunk_p90", "hours")] for a in arms]  # fmt: skip
    measures = {m[0]: m[1] for m in METRICS}
    cmp = [[c["arm"], measures.get(c["metric"], c["metric"]), fmt.points(c["diff"]),
            fmt.interval(c["diff_lo"], c["diff_hi"], "points"), fmt.p_value(c["p_value"]),
            fmt.lift(c["rel_lift"]), fmt.interval(c["rel_lift_lo"], c["rel_lift_hi"], "lift"),
            c["method"], c["note"]]
           for c in report.comparisons.to_dict(orient="records")]  # fmt: skip
    top = report.rumors.sort_values(["exposed_users", "rumor_id"], ascending=[False, True])
    rumors = [[r["rumor_id"], r["claim"], r["arm"], fmt.count(r["exposed_users"]),
               fmt.count(r["reached_users"]),
               f"{fmt.pct(r['reach'])} {fmt.interval(r['reach_lo'], r['reach_hi'])}",
               fmt.pct(r["ctr"]), fmt.hours(r["hours_to_debunk_p50"]), fmt.count(r["reshared"])]
              for r in top.head(TOP_RUMOR_ROWS).to_dict(orient="records")]  # fmt: skip
    surfaces = report.summary.get("reach_by_surface", {})
    surface_rows = [[name, fmt.count(v["served"]), fmt.count(v["impressions"]),
                     fmt.count(v["clicks"]), fmt.count(v["reached_pairs"]),
                     fmt.count(v["reached_users"])] for name, v in surfaces.items()]  # fmt: skip
    return (
        "<h2>Tables</h2>"
        + table(
            "Arms: counts",
            [
                "Arm",
                "Policy",
                "Share",
                "Exposed users",
                "Exposed pairs",
                "Reached users",
                "Reached pairs",
                "Impressions",
                "Clicks",
            ],
            counts,
            text_columns=(0, 1),
        )  # fmt: skip
        + table(
            "Arms: rates with 95% intervals",
            [
                "Arm",
                "User reach",
                "Pair reach",
                "Click-through",
                "Re-share after debunk",
                "Median time to debunk",
                "90th-percentile time",
            ],
            rates,
        )  # fmt: skip
        + table(
            "Differences against control",
            [
                "Arm",
                "Metric",
                "Difference",
                "95% interval",
                "p-value",
                "Relative lift",
                "95% interval",
                "Method",
                "Note",
            ],
            cmp,
            text_columns=(0, 1, 7, 8),
            wrap_columns=(8,),
        )  # fmt: skip
        + (
            table(
                "Per surface (events at or after the first exposure)",
                ["Surface", "Served", "Impressions", "Clicks", "Reached pairs", "Reached users"],
                surface_rows,
            )
            if surface_rows
            else ""
        )  # fmt: skip
        + table(
            f"Per rumor and arm (the {top.head(TOP_RUMOR_ROWS)['rumor_id'].nunique()} "
            "rumors with the most exposed users, per arm)",
            [
                "Rumor",
                "Claim",
                "Arm",
                "Exposed users",
                "Reached users",
                "User reach",
                "Click-through",
                "Median time to debunk",
                "Re-shares",
            ],
            rumors,
            text_columns=(0, 1, 2),
            wrap_columns=(1,),
        )  # fmt: skip
    )


def _description(report: ReachTables) -> str:
    """The experiment in a sentence: window, arms with shares and policies, control."""
    exp = report.experiment
    arms = ", ".join(
        f"{html.escape(a.name)} ({fmt.pct(a.share, 0)}"
        + (", never served" if a.policy == "holdout" else f", {html.escape(a.policy)} policy")
        + ")"
        for a in exp.arms
    )
    text = f" Description: {html.escape(exp.description)}." if exp.description else ""
    return (
        f"<p>Exposures first seen {report.date_from} to {report.date_to}. Arms: {arms}; the "
        f"control arm is <b>{html.escape(exp.control.name)}</b>.{text} Users are the unit of "
        "randomisation and of every interval.</p>"
    )


def render(report: ReachTables) -> str:
    """The whole page."""
    exp = report.experiment
    names = [a.name for a in exp.arms]
    holdouts = {a.name for a in exp.arms if a.policy == "holdout"}
    warnings = "".join(
        f'<div class="warn">{html.escape(w)}</div>'
        for w in report.warnings
        if not w.startswith("SAMPLE RATIO MISMATCH")  # the banner says it
    )
    no_data = '<p class="na">no data</p>'
    sections = [
        f"<h1>Reach report: {html.escape(exp.name)}</h1>",
        _description(report),
        srm_banner(report.srm, names),
        warnings,
        f'<p id="headline" class="headline">{html.escape(report.headline)}</p>',
        scorecard_section(report),
        "<h2>User reach over time</h2>",
        plot_daily(report.daily, names, holdouts) if len(report.daily) else no_data,
        "<h2>Time to debunk</h2>",
        plot_time(report.time_to_debunk, names, holdouts)
        if len(report.time_to_debunk)
        else no_data,
        "<h2>Per rumor</h2>",
        plot_rumors(report.rumors, names, holdouts) if len(report.rumors) else no_data,
        scope_section(report),
        raw_tables(report),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Reach report {html.escape(exp.name)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )
