"""Time in the synthetic world: microsecond units, the daily rhythm of activity (UTC, for users
in China) and the ISO strings the library files carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US


class Diurnal:
    """Time of day of activity (UTC) for users in China (UTC+8): quiet at night, peaks at lunch
    and in the evening."""

    LOCAL = (2, 1, 0.6, 0.4, 0.4, 0.6, 1.5, 3, 4, 4.5, 4.5, 5, 6, 5.5, 4.5, 4.5, 4.5, 5, 5.5,
             6.5, 7.5, 8, 7, 4.5)  # fmt: skip

    GUIDE = 1 << 16  # finer than the smallest hour's share, so a bucket spans <= 1 boundary

    def __init__(self) -> None:
        w = np.roll(np.array(self.LOCAL, dtype=np.float64), -8)  # w[utc hour]
        self.cdf = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
        self.cdf[-1] = 1.0
        starts = np.arange(self.GUIDE) / self.GUIDE
        self.guide = np.searchsorted(self.cdf, starts, side="right") - 1

    def offsets_us(self, u: np.ndarray) -> np.ndarray:
        """Microseconds into the day for quantiles ``u`` in [0, 1); monotone in ``u``."""
        h = self.guide[(u * self.GUIDE).astype(np.int64)]
        h = np.minimum(h + (u >= self.cdf[h + 1]), 23)
        frac = (u - self.cdf[h]) / (self.cdf[h + 1] - self.cdf[h])
        return np.minimum(((h + frac) * HOUR_US).astype(np.int64), DAY_US - 1)

    def sorted_offsets_us(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sorted times of day, drawn in O(n) from exponential spacings (no sort)."""
        c = np.cumsum(rng.standard_exponential(n + 1))
        return self.offsets_us(c[:n] / c[n])


DIURNAL = Diurnal()


def iso(us: int) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_minute(us: np.ndarray | int) -> Any:
    """Microsecond times truncated to the minute (library times read like an editor's)."""
    return us // (60 * SECOND_US) * (60 * SECOND_US)
