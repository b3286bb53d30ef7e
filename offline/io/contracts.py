"""Parquet schemas of the input contracts (design.md), shared by every writer and reader."""

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
EXPOSURE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("ts", TS),
        ("surface", pa.string()),
        ("action", pa.string()),
    ]
)
ITEM_SCHEMA = pa.schema([("item_id", pa.string()), ("text", pa.string()), ("created_at", TS)])
TAG_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("source", pa.string()),
        ("score", pa.float64()),
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("debunk_id", pa.string()),
        ("rumor_id", pa.string()),
        ("surface", pa.string()),
        ("event", pa.string()),
        ("ts", TS),
        ("experiment", pa.string()),
        ("arm", pa.string()),
    ]
)
# An optional debunk-events column (files written before it lack it: read as false): the event
# was on a re-pushed revised card, not a first delivery.
EVENT_UPDATE = pa.field("update", pa.bool_())
