"""The world's files besides the logs: the rumor library (rumors.jsonl, debunks.jsonld as
ClaimReview, tagged_items.parquet), item texts, the planted truth and the experiment config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.vocab import FORMATS
from offline.io.contracts import ITEM_SCHEMA, TAG_SCHEMA, TS
from offline.synth import texts
from offline.synth.authors import author_types
from offline.synth.background import Pools
from offline.synth.experiment import Trial
from offline.synth.ids import item_ids, rumor_ids, user_ids
from offline.synth.library import Library
from offline.synth.population import CHUNK_ROWS, Users
from offline.synth.streams import Stream, stream
from offline.synth.writers import PARQUET_OPTIONS, atomic, write_parquet, write_text

# The item texts with their authors (the optional author_type of docs/contracts/inputs.md).
ITEM_FILE_SCHEMA = ITEM_SCHEMA.append(pa.field("author_type", pa.string()))
TRUTH_USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("preferred_format", pa.string()),
        ("trusts_official", pa.bool_()),
        ("activity", pa.float64()),
    ]
)
TRUTH_ITEM_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("kind", pa.string()),
        ("tagged", pa.bool_()),
    ]
)


def write_items(out: Path, lib: Library, pools: Pools, seed: int) -> tuple[int, int]:
    """items.parquet: every rumor item, then every background item the logs reference, each
    with its ``author_type`` (``offline/synth/authors.py``). Returns (rumor items, background
    items)."""
    background = 0
    with (
        atomic(out / "items.parquet") as tmp,
        pq.ParquetWriter(tmp, ITEM_FILE_SCHEMA, **PARQUET_OPTIONS) as writer,
    ):
        n = len(lib.item_text)
        writer.write_table(
            pa.Table.from_arrays(
                [
                    item_ids(np.arange(n)),
                    pa.array(lib.item_text, pa.string()),
                    pa.array(lib.item_created, type=TS),
                    author_types(np.arange(n), rumor=True),
                ],
                schema=ITEM_FILE_SCHEMA,
            )
        )
        for k in range(pools.count):
            used = pools.referenced[k * pools.per_day : (k + 1) * pools.per_day]
            if not used.any():
                continue
            slots = np.flatnonzero(used)
            text = texts.background_texts(stream(seed, Stream.ITEM_TEXT, k), pools.per_day)
            table = pa.Table.from_arrays(
                [
                    item_ids(pools.first_item + k * pools.per_day + slots),
                    text.filter(pa.array(used)),
                    pa.array(pools.created(k)[slots], type=TS),
                    author_types(pools.first_item + k * pools.per_day + slots, rumor=False),
                ],
                schema=ITEM_FILE_SCHEMA,
            )
            writer.write_table(table)
            background += table.num_rows
    return n, background


def write_library(out: Path, lib: Library) -> int:
    """rumors.jsonl, debunks.jsonld, tagged_items.parquet and truth/rumor_items.parquet;
    returns the number of tagged items."""
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in lib.records]
    write_text("".join(lines), out / "rumors.jsonl")
    write_text(
        json.dumps(lib.claim_reviews, ensure_ascii=False, sort_keys=True, indent=1) + "\n",
        out / "debunks.jsonld",
    )
    items = np.arange(len(lib.item_rumor))
    tagged = items[lib.item_tagged]
    write_parquet(
        pa.Table.from_arrays(
            [
                item_ids(tagged),
                rumor_ids(lib.item_rumor[tagged]),
                pa.array(["manual"] * len(tagged), pa.string()),
                pa.array(np.ones(len(tagged)), pa.float64()),
            ],
            schema=TAG_SCHEMA,
        ),
        out / "tagged_items.parquet",
    )
    write_parquet(
        pa.Table.from_arrays(
            [
                item_ids(items),
                rumor_ids(lib.item_rumor),
                pa.array(lib.item_kind, pa.string()),
                pa.array(lib.item_tagged),
            ],
            schema=TRUTH_ITEM_SCHEMA,
        ),
        out / "truth" / "rumor_items.parquet",
    )
    return len(tagged)


def write_truth_users(out: Path, users: Users) -> None:
    """truth/users.parquet: the planted preferences, in blocks of CHUNK_ROWS users."""
    names = pa.array(FORMATS, pa.string())
    with (
        atomic(out / "truth" / "users.parquet") as tmp,
        pq.ParquetWriter(tmp, TRUTH_USER_SCHEMA, **PARQUET_OPTIONS) as writer,
    ):
        for lo in range(0, users.n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, users.n)
            writer.write_table(
                pa.Table.from_arrays(
                    [
                        user_ids(np.arange(lo, hi)),
                        pc.take(names, users.pref_format[lo:hi]),
                        pa.array(users.trusts[lo:hi]),
                        pa.array(users.activity[lo:hi], pa.float64()),
                    ],
                    schema=TRUTH_USER_SCHEMA,
                )
            )


def write_experiment(out: Path, trial: Trial | None) -> None:
    """experiment.json: the planted experiment's config (what `debunk experiment create` takes)."""
    path = out / "experiment.json"
    if trial is None:
        path.unlink(missing_ok=True)
        return
    config = {**trial.experiment.to_dict(), "planted": trial.planted()}
    write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", path)
