"""Numbers as people read them: percentages, percentage points, hours, p-values and counts, with
float noise rounded away and missing values shown as a dash (pure: strings from floats)."""

from __future__ import annotations

import math

DASH = "—"
NOISE = 1e-12  # below this a difference is float noise, shown as 0


def _missing(v: float | None) -> bool:
    """Whether a value is absent (None or NaN)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def clean(v: float) -> float:
    """``v`` with float noise (|v| < NOISE) set to exactly 0."""
    return 0.0 if abs(v) < NOISE else v


def pct(v: float | None, digits: int = 1) -> str:
    """A share as a percentage: 0.6777 -> '67.8%'."""
    if _missing(v):
        return DASH
    return f"{clean(float(v)) * 100:.{digits}f}%"


def points(v: float | None, digits: int = 1) -> str:
    """A difference of shares in percentage points with its sign: 0.151 -> '+15.1 pp'."""
    if _missing(v):
        return DASH
    return f"{clean(float(v)) * 100:+.{digits}f} pp".replace("-", "−")


def lift(v: float | None) -> str:
    """A relative change with its sign: 0.223 -> '+22%', -0.0123 -> '−1.2%'."""
    if _missing(v):
        return DASH
    v = clean(float(v))
    digits = 0 if abs(v) >= 0.1 or v == 0 else 1
    return f"{v * 100:+.{digits}f}%".replace("-", "−")


def p_value(p: float | None) -> str:
    """A p-value as a reader quotes it: 'p < 0.001' or 'p = 0.043'."""
    if _missing(p):
        return DASH
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def hours(h: float | None) -> str:
    """A duration in hours as minutes, hours or days, whichever reads best."""
    if _missing(h):
        return DASH
    h = float(h)
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"


def hours_delta(h: float | None) -> str:
    """A difference of durations with its sign, in hours."""
    if _missing(h):
        return DASH
    return f"{clean(float(h)):+.1f} h".replace("-", "−")


def count(n: float | None) -> str:
    """A count with thousands separators: 13512 -> '13,512'."""
    if _missing(n):
        return DASH
    return f"{int(n):,}"


def interval(lo: float | None, hi: float | None, unit: str = "share") -> str:
    """An interval in the unit of its value: '[67.1%, 68.5%]', '[−1.0 pp, +2.3 pp]'."""
    if _missing(lo) or _missing(hi):
        return ""
    show = {"share": pct, "points": points, "lift": lift, "hours": hours}[unit]
    return f"[{show(lo)}, {show(hi)}]"


def number(v: float | None, digits: int = 3) -> str:
    """A plain number with ``digits`` significant digits, noise rounded to 0."""
    if _missing(v):
        return DASH
    return f"{clean(float(v)):.{digits}g}"
