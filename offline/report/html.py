"""The reach report as one self-contained HTML page: tables, the SRM verdict and plots embedded
as PNG data, so it can be mailed or attached to a ticket without its folder."""

from __future__ import annotations

import base64
import html
import io
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from offline.report.tables import ReachTables

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_RUMORS = 25
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.alarm{background:#b00020;color:#fff;padding:1em;font-weight:bold;font-size:1.1em}
.ok{background:#e7f5e9;padding:.6em}
.warn{background:#fff4d6;padding:.6em;margin:.3em 0}
img{max-width:100%}
"""


def _png(fig: Figure) -> str:
    """The figure as an inline PNG <img> tag; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return (
        f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    )


def _pyplot() -> ModuleType:
    """matplotlib.pyplot on the headless Agg backend, imported only when a page is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_daily(daily: pd.DataFrame, arms: list[str]) -> str:
    """Reach by arm over the days of first exposure, with Wilson bands."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for k, arm in enumerate(arms):
        g = daily[daily["arm"] == arm]
        x = pd.to_datetime(g["day"])
        ax.plot(x, g["reach"], marker="o", ms=3, label=arm, color=f"C{k}")
        ax.fill_between(x, g["reach_lo"], g["reach_hi"], alpha=0.2, color=f"C{k}")
    ax.set_ylabel("reached / exposed pairs")
    ax.set_title("Reach by arm, by day of first exposure")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig)


def plot_time(times: pd.DataFrame, arms: list[str]) -> str:
    """The share of reached pairs per time-to-debunk bin, one bar group per arm."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    bins = times[times["arm"] == arms[0]] if arms else times
    labels = [_span(lo) + "–" + _span(hi) for lo, hi in zip(bins["from_s"], bins["to_s"],
                                                            strict=True)]  # fmt: skip
    width = 0.8 / max(len(arms), 1)
    for k, arm in enumerate(arms):
        share = times.loc[times["arm"] == arm, "share"].to_numpy()
        ax.bar(np.arange(len(share)) + k * width, share, width, label=arm, color=f"C{k}")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")
    ax.set_ylabel("share of reached pairs")
    ax.set_title("Time from exposure to the first debunk impression")
    ax.legend()
    return _png(fig)


def _span(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "∞"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    if seconds < 86_400:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 86_400:g}d"


def plot_rumors(rumors: pd.DataFrame, arms: list[str]) -> str:
    """Reach per rumor and arm for the rumors with the most exposed users."""
    plt = _pyplot()
    top = rumors.groupby("rumor_id")["exposed_users"].sum().nlargest(TOP_RUMORS).index
    sub = rumors[rumors["rumor_id"].isin(top)]
    pivot = sub.pivot(index="rumor_id", columns="arm", values="reach").reindex(top[::-1])
    pivot = pivot.reindex(columns=arms)
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(top))))
    height = 0.8 / max(len(pivot.columns), 1)
    for k, arm in enumerate(pivot.columns):
        ax.barh(np.arange(len(pivot)) + k * height, pivot[arm].fillna(0), height, label=arm,
                color=f"C{k}")  # fmt: skip
    ax.set_yticks(np.arange(len(pivot)) + 0.4 - height / 2, pivot.index)
    ax.set_xlabel("reached / exposed users")
    ax.set_xlim(0, 1)
    ax.set_title(f"Reach per rumor (the {len(top)} with the most exposed users)")
    ax.legend()
    return _png(fig)


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}g}", border=0)


def render(report: ReachTables) -> str:
    """The whole page."""
    exp = report.experiment
    srm = report.srm
    verdict = (
        f'<div class="alarm">SAMPLE RATIO MISMATCH (p = {srm["p_value"]:.2g}): exposed users '
        f"per arm {srm['counts']} do not fit the shares {srm['expected_shares']}. Do not trust "
        "the comparisons below until the cause is found.</div>"
        if srm["mismatch"]
        else f'<div class="ok">Sample ratio check passed: {srm["counts"]} against shares '
        f"{srm['expected_shares']} (chi2 = {srm['chi2']:.2f}, p = {srm['p_value']:.3g}).</div>"
    )
    warnings = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in report.warnings)
    arms = report.arms
    names = [a.name for a in exp.arms]
    sections = [
        f"<h1>Reach report: {html.escape(exp.name)}</h1>",
        f"<p>{report.date_from} to {report.date_to}; arms "
        + ", ".join(f"{html.escape(a.name)} ({a.share:g}, {a.policy})" for a in exp.arms)
        + f"; control: {html.escape(exp.control.name)}. Users are the unit: ratios are "
        "clustered by user (delta method), user proportions use Wilson intervals, times use a "
        "user-clustered bootstrap.</p>",
        verdict,
        warnings,
        "<h2>Arms</h2>",
        _table(arms),
        "<h2>Differences against control</h2>",
        _table(report.comparisons),
        "<h2>Reach over time</h2>",
        plot_daily(report.daily, names) if len(report.daily) else "<p>no data</p>",
        "<h2>Time to debunk</h2>",
        plot_time(report.time_to_debunk, names) if len(report.time_to_debunk) else "<p>no data</p>",
        "<h2>Per rumor</h2>",
        plot_rumors(report.rumors, names) if len(report.rumors) else "<p>no data</p>",
        _table(report.rumors.sort_values("exposed_users", ascending=False).head(100)),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Reach report {html.escape(exp.name)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )
