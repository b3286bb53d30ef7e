"""The reach report's charts, all embedded so the page works offline: the time charts drawn with
matplotlib (Agg) as PNG data URIs in ``<img class="chart">`` tags, the per-rumor chart (claims
in any script) and the scorecard's interval bars as inline ``<svg class="chart">``."""

from __future__ import annotations

import base64
import html
import io
import math
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from offline.report import formatting as fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_RUMORS = 25
CLAIM_CHARS = 48  # a claim is cut to this many characters in a chart label


def _png(fig: Figure, alt: str) -> str:
    """The figure as an inline PNG <img class="chart"> tag; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pyplot() -> ModuleType:
    """matplotlib.pyplot on the headless Agg backend, imported only when a page is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(arm: str, k: int, holdouts: set[str]) -> dict[str, object]:
    """Line style of an arm: a holdout dashed and drawn on top, so it shows on the axis."""
    if arm in holdouts:
        return {"color": "#555", "linestyle": "--", "zorder": 5, "label": f"{arm} (never served)"}
    return {"color": f"C{k}", "zorder": 3, "label": arm}


def plot_daily(daily: pd.DataFrame, arms: list[str], holdouts: set[str]) -> str:
    """User reach by arm, by the day of the user's first exposure, with Wilson bands."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for k, arm in enumerate(arms):
        g = daily[daily["arm"] == arm]
        x = pd.to_datetime(g["day"])
        style = _style(arm, k, holdouts)
        ax.plot(x, g["user_reach"], marker="o", ms=4, **style)
        ax.fill_between(x, g["user_reach_lo"], g["user_reach_hi"], alpha=0.2,
                        color=style["color"])  # fmt: skip
    ax.set_ylabel("user reach")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title("User reach by arm, by day of the user's first exposure (95% Wilson bands)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.autofmt_xdate()
    return _png(fig, "user reach by day of first exposure, per arm")


def plot_time(times: pd.DataFrame, arms: list[str], holdouts: set[str]) -> str:
    """The share of reached pairs per time-to-debunk bin, one bar group per served arm."""
    plt = _pyplot()
    served = [a for a in arms if a not in holdouts] or arms
    fig, ax = plt.subplots(figsize=(10, 3.6))
    bins = times[times["arm"] == served[0]] if served else times
    labels = [_span(lo) + "–" + _span(hi) for lo, hi in zip(bins["from_s"], bins["to_s"],
                                                            strict=True)]  # fmt: skip
    width = 0.8 / max(len(served), 1)
    for k, arm in enumerate(served):
        share = times.loc[times["arm"] == arm, "share"].to_numpy()
        ax.bar(np.arange(len(share)) + k * width, share, width, label=arm, color=f"C{k}")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylabel("share of reached pairs")
    ax.set_title("Time from first exposure to the first debunk impression")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return _png(fig, "time to debunk distribution, per served arm")


def _span(seconds: float) -> str:
    """A bin edge in seconds as a short duration (m, h, d)."""
    if not np.isfinite(seconds):
        return "∞"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    if seconds < 86_400:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 86_400:g}d"


def rumor_label(rumor_id: str, claim: str) -> str:
    """A rumor as a chart names it: its id and the start of its claim."""
    claim = " ".join(str(claim or "").split())
    if len(claim) > CLAIM_CHARS:
        claim = claim[: CLAIM_CHARS - 1].rstrip() + "…"
    return f"{rumor_id}: {claim}" if claim else str(rumor_id)


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def plot_rumors(rumors: pd.DataFrame, arms: list[str], holdouts: set[str]) -> str:
    """User reach per rumor and served arm for the rumors with the most exposed users, as an
    inline SVG: its labels are text the reader's browser draws, so claims in any script read
    (a PNG would bake in whatever glyphs the drawing machine lacks)."""
    served = [a for a in arms if a not in holdouts] or arms
    top = list(rumors.groupby("rumor_id")["exposed_users"].sum().nlargest(TOP_RUMORS).index)
    reach = rumors.set_index(["rumor_id", "arm"])["reach"]
    claims = rumors.drop_duplicates("rumor_id").set_index("rumor_id")["claim"]
    label_w, bar_w, row_h, bar_h, top_h = 430, 520, 8 + 12 * len(served), 11, 44
    width, height = label_w + bar_w + 30, top_h + row_h * len(top) + 30
    parts = [
        f'<text x="0" y="16" font-weight="600">User reach per rumor (the {len(top)} with the '
        "most exposed users)</text>"
    ]
    for k, arm in enumerate(served):
        x = label_w + k * 150
        parts.append(f'<rect x="{x}" y="26" width="12" height="10" fill="{_PALETTE[k % 6]}"/>'
                     f'<text x="{x + 16}" y="35">{html.escape(arm)}</text>')  # fmt: skip
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = label_w + tick * bar_w
        parts.append(f'<line x1="{x}" y1="{top_h - 4}" x2="{x}" y2="{height - 26}" '
                     f'stroke="#ddd"/><text x="{x}" y="{height - 10}" text-anchor="middle">'
                     f"{tick:.0%}</text>")  # fmt: skip
    for i, rumor in enumerate(top):
        y = top_h + i * row_h
        label = html.escape(rumor_label(rumor, claims.get(rumor, "")))
        full = html.escape(str(claims.get(rumor, "")))
        parts.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end">'
                     f"<title>{full}</title>{label}</text>")  # fmt: skip
        for k, arm in enumerate(served):
            v = reach.get((rumor, arm), math.nan)
            w = 0.0 if _bad(v) else float(v) * bar_w
            parts.append(f'<rect x="{label_w}" y="{y + 4 + k * 12}" width="{w:.1f}" '
                         f'height="{bar_h}" fill="{_PALETTE[k % 6]}"><title>{html.escape(arm)}: '
                         f"{fmt.pct(v)}</title></rect>")  # fmt: skip
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px" font-size="12" font-family="system-ui,sans-serif" '
        f'role="img" aria-label="user reach per rumor and served arm">{"".join(parts)}</svg>'
    )


def interval_bar(lo: float, hi: float, value: float, span: tuple[float, float],
                 mark: float = math.nan) -> str:  # fmt: skip
    """A small inline SVG: the interval [lo, hi] as a bar with its point, a line at 0 and, when
    given, the planted value as a red tick, on the common scale ``span``."""
    width, height = 130, 18
    a, b = span
    if b <= a or any(map(_bad, (lo, hi, value))):
        return ""

    def x(v: float) -> float:
        """The pixel position of ``v`` on the bar's scale (clamped to it)."""
        return round((min(max(v, a), b) - a) / (b - a) * (width - 8) + 4, 1)

    zero = (
        f'<line x1="{x(0)}" y1="1" x2="{x(0)}" y2="{height - 1}" stroke="#999"/>'
        if a <= 0 <= b
        else ""
    )
    planted = (
        f'<line x1="{x(mark)}" y1="2" x2="{x(mark)}" y2="{height - 2}" stroke="#c00" '
        'stroke-width="2"/>'
        if not _bad(mark)
        else ""
    )
    colour = "#2a7" if lo > 0 else "#c62" if hi < 0 else "#888"
    title = f"{fmt.lift(value)} {fmt.interval(lo, hi, 'lift')}"
    return (
        f'<svg class="chart bar" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>{zero}'
        f'<rect x="{x(lo)}" y="6" width="{max(x(hi) - x(lo), 1.5)}" height="6" '
        f'fill="{colour}" opacity="0.55"/>'
        f'<circle cx="{x(value)}" cy="9" r="3" fill="{colour}"/>{planted}</svg>'
    )


def _bad(v: float) -> bool:
    """Whether a value is NaN or infinite (nothing to draw)."""
    return v is None or not math.isfinite(float(v))
