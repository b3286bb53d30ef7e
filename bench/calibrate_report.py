"""Calibration of the reach report over repeated synthetic worlds (``make calibrate-report``).

For each seed, two small worlds are synthesised: an A/A world (both arms served alike) and an
A/B world with a planted serving lift, each with a salt of its own (with one salt for every world,
the same few thousand user ids would be split the same way every time). The report should
reject the A/A null at about the stated rate (alpha), and its interval for the relative reach
lift should cover the planted value about 1 - alpha of the time. Prints both rates with their
binomial standard errors.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command_line, format_table, machine  # noqa: E402

START = date(2026, 10, 1)
METRICS = ("user_reach", "pair_reach", "ctr", "reshare_after_debunk")


def one(seed: int, users: int, days: int, lift: float, tmp: Path) -> dict:
    """p-values of the A/A world and whether the A/B interval covers the planted lift."""
    from offline.report.reach import reach_report
    from offline.synth.world import PlantedExperiment, synthesize

    end = START + timedelta(days=days - 1)
    out = {}
    for kind, lifts in (("aa", {}), ("ab", {"b": lift})):
        world = tmp / f"{kind}-{seed}"
        synthesize(world, users=users, days=days, seed=seed, start=START,
                   experiment=PlantedExperiment(f"cal-{kind}", "a:0.5,b:0.5", lifts,
                                                salt=f"cal-{kind}-{seed}"))  # fmt: skip
        report = reach_report(world, world / "experiment.json", START, end, n_boot=0,
                              progress=False)  # fmt: skip
        cmp = report.comparisons.set_index("metric")
        if kind == "aa":
            out["p"] = {m: float(cmp.loc[m, "p_value"]) for m in METRICS}
        else:
            planted = json.loads((world / "experiment.json").read_text())["planted"]
            truth = planted["expected_relative_reach"]["b"] - 1
            row = cmp.loc["pair_reach"]
            out["covered"] = bool(row["rel_lift_lo"] <= truth <= row["rel_lift_hi"])
            out["rejected"] = bool(row["p_value"] < 0.05)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--users", type=int, default=4000)
    p.add_argument("--days", type=int, default=4)
    p.add_argument("--lift", type=float, default=0.2)
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        for seed in range(args.seeds):
            runs.append(one(seed, args.users, args.days, args.lift, Path(tmp)))
            for world in Path(tmp).iterdir():  # keep the disk flat
                shutil.rmtree(world)
    n = len(runs)

    def rate(hits: int) -> tuple[float, float]:
        r = hits / n
        return r, math.sqrt(r * (1 - r) / n)

    rows = []
    for m in METRICS:
        valid = [r["p"][m] for r in runs if not math.isnan(r["p"][m])]
        r, se = rate(sum(v < args.alpha for v in valid))
        rows.append([f"A/A {m}: p < {args.alpha}", len(valid), r, se, args.alpha])
    r, se = rate(sum(r["covered"] for r in runs))
    rows.append([f"A/B pair_reach: CI covers planted {args.lift:+g}", n, r, se, 1 - args.alpha])
    r, se = rate(sum(r["rejected"] for r in runs))
    rows.append(["A/B pair_reach: p < 0.05 (power)", n, r, se, "-"])
    print(f"# {command_line()}\n# {json.dumps(machine())}")
    print(format_table(["check", "worlds", "rate", "± se", "expected"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
