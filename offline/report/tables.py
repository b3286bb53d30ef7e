"""The reach report's data: every table as a pandas DataFrame, the SRM check, the warnings and
the pair outcomes behind them; what the analysis returns and the HTML page renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from domain.experiments import Experiment
from offline.report.outcomes import Outcomes

TABLES = ("scorecard", "arms", "comparisons", "rumors", "daily", "time_to_debunk")


@dataclass
class ReachTables:
    """Every table of the report as pandas DataFrames, the SRM check and the warnings."""

    experiment: Experiment
    date_from: date
    date_to: date
    arms: pd.DataFrame
    comparisons: pd.DataFrame
    rumors: pd.DataFrame
    daily: pd.DataFrame
    time_to_debunk: pd.DataFrame
    srm: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    outcomes: Outcomes | None = None  # the per-pair table behind every number
    scorecard: pd.DataFrame = field(default_factory=pd.DataFrame)  # per arm x metric, for people
    headline: str = ""  # the one-sentence answer

    def summary_dict(self) -> dict[str, Any]:
        """The experiment, the window, the SRM check, warnings, arms and comparisons as JSON-ready
        data (what summary.json holds)."""
        return {
            "experiment": self.experiment.to_dict(),
            "headline": self.headline,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "srm": self.srm,
            "warnings": self.warnings,
            "arms": self.arms.to_dict(orient="records"),
            "comparisons": self.comparisons.to_dict(orient="records"),
            **self.summary,
        }
