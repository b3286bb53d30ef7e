"""The A/B experiment a world may plant: users split by the production hash, each arm's serving
chance scaled by its lift, and what the reach report should find."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from domain.experiments import Arm, Experiment, parse_arms
from offline.synth.ids import user_ids
from offline.synth.serving import SERVE_P


@dataclass(frozen=True)
class PlantedExperiment:
    """An A/B experiment the world runs: users split by the production hash, and each arm's
    chance of being served a debunk scaled by its planted lift (a holdout arm is never served),
    so the reach report has a known effect to recover."""

    name: str
    arms: str = "control:0.5,treatment:0.5"  # domain.experiments.parse_arms syntax
    lifts: dict[str, float] = field(default_factory=dict)  # arm -> relative serving lift
    salt: str = ""


class Trial:
    """A planted experiment resolved for this world: every user's arm and serving chance."""

    def __init__(self, planted: PlantedExperiment, users: int, start: date, days: int) -> None:
        begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.experiment = Experiment(
            planted.name, planted.salt or planted.name, parse_arms(planted.arms),
            begin.timestamp(), (begin + timedelta(days=days)).timestamp(),
            description="planted by debunk synth",
        )  # fmt: skip
        unknown = set(planted.lifts) - {a.name for a in self.experiment.arms}
        if unknown:
            raise ValueError(f"lifts name arms the experiment lacks: {sorted(unknown)}")
        self.lifts = planted.lifts
        self.arm_serve_p = np.array([self._serve_p(a, planted) for a in self.experiment.arms])
        self.arm = np.empty(users, dtype=np.int8)
        for lo in range(0, users, 1 << 20):
            hi = min(users, lo + (1 << 20))
            ids = user_ids(np.arange(lo, hi)).to_pylist()
            self.arm[lo:hi] = self.experiment.arm_indexes(ids)
        self.serve_p = self.arm_serve_p[self.arm]
        self.arm_names = pa.array([a.name for a in self.experiment.arms])

    @staticmethod
    def _serve_p(arm: Arm, planted: PlantedExperiment) -> float:
        if arm.policy == "holdout":
            return 0.0
        return min(1.0, SERVE_P * (1 + planted.lifts.get(arm.name, 0.0)))

    def planted(self) -> dict[str, Any]:
        """What the report should find: each arm's serving chance and its reach relative to
        the control arm (reach is proportional to the serving chance)."""
        control = [a.name for a in self.experiment.arms].index(self.experiment.control.name)
        base = self.arm_serve_p[control]
        return {
            "name": self.experiment.name,
            "arms": [a.name for a in self.experiment.arms],
            "lifts": dict(sorted(self.lifts.items())),
            "serve_p": dict(zip(self.arm_names.to_pylist(), self.arm_serve_p.round(6).tolist(),
                                strict=True)),
            "expected_relative_reach": {
                a.name: round(float(p / base), 6) if base else None
                for a, p in zip(self.experiment.arms, self.arm_serve_p, strict=True)
            },
        }  # fmt: skip
