"""Training time on a synthetic world with >= 1M debunk events (both models, bounded threads).

Run: ``python bench/bench_train.py [--users 130000]``; the world is cached under bench/out/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from offline.io import catalog
from offline.join.engine import join_exposures
from offline.models.features import read_events
from offline.models.train import train_models
from offline.synth.world import synthesize


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=130_000)
    p.add_argument("--days", type=int, default=14)
    args = p.parse_args()
    world = Path(__file__).parent / "out" / f"train-{args.users}"
    if not (world / "world.json").exists():
        synthesize(world, users=args.users, days=args.days, seed=5, reach=3.0, cards=3,
                   mean_daily=1.0)  # fmt: skip
    rumors = catalog.load_rumors(world / "rumors.jsonl")
    debunks = catalog.load_debunks(world / "debunks.jsonld")
    state, _ = join_exposures(
        world / "exposures", catalog.load_tags(world / "tagged_items.parquet")
    )
    events = read_events(world / "debunk_events")
    started = time.perf_counter()
    trained = train_models(events, state, rumors, debunks)
    seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"events": events.num_rows, "exposure_pairs": state.num_rows,
                      "train_seconds": seconds, "summary": trained.summary}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
