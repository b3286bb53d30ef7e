"""Exposure pairs whose user id is outside the id alphabet: they can never become a Redis key, so
the snapshot writer skips them; the nightly job writes them to rejects with the reason first, so
none is dropped silently."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.ids import ID_ALPHABET, ID_PATTERN
from offline.io.tempfiles import temp_path

REASON = f"user_id outside the id alphabet [{ID_ALPHABET}]{{1,128}}: it cannot be a store key"
ID_REJECT_SCHEMA = pa.schema(
    [("reason", pa.string()), ("user_id", pa.string()), ("rumor_id", pa.string()),
     ("exposures", pa.int64())]
)  # fmt: skip


def write_id_rejects(state: Path, out: Path, *, batch_rows: int = 1 << 20) -> int:
    """Stream the state's pairs, write those with an unusable user id to ``out`` (aside, then
    renamed; no file when there are none) and return how many there were."""
    source = pq.ParquetFile(state)
    bad: list[pa.Table] = []
    for batch in source.iter_batches(batch_size=batch_rows, columns=["user_id", "rumor_id",
                                                                       "exposures"]):  # fmt: skip
        ok = pc.match_substring_regex(batch["user_id"], ID_PATTERN)
        failing = pc.invert(pc.fill_null(ok, False))
        if pc.any(failing).as_py():
            bad.append(pa.Table.from_batches([batch]).filter(failing))
    count = sum(t.num_rows for t in bad)
    if not count:
        return 0
    rows = pa.concat_tables(bad)
    table = pa.table(
        {
            "reason": pa.array([REASON] * count, pa.string()),
            "user_id": rows["user_id"].cast(pa.string()),
            "rumor_id": rows["rumor_id"].cast(pa.string()),
            "exposures": rows["exposures"].cast(pa.int64()),
        },
        schema=ID_REJECT_SCHEMA,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out)
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out)
    return count
