"""Model inputs from the nightly inputs (never from truth/): debunk events as labelled pairs,
debunk feature rows (publisher, authority, format, rumor category, language, title length) and
user feature rows (identity, exposure profile, activity)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import scipy.sparse as sp

from domain.records import Debunk, Rumor
from domain.vocab import ACTIONS

POSITIVE_EVENTS = ("click", "share")
SHOWN_EVENTS = ("impression", "click", "dismiss", "share")
EVENT_COLUMNS = ["user_id", "debunk_id", "rumor_id", "event", "ts"]


def read_events(folder: Path, *, since: datetime | None = None, until: datetime | None = None):
    """Debunk events in [since, until) from ``dt=`` partitions (an empty table when none)."""
    schema = pa.schema([("user_id", pa.string()), ("debunk_id", pa.string()),
                        ("rumor_id", pa.string()), ("event", pa.string()),
                        ("ts", pa.timestamp("us", tz="UTC"))])  # fmt: skip
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        return schema.empty_table()
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=EVENT_COLUMNS
    )
    table = table.set_column(4, "ts", pc.cast(table["ts"], pa.timestamp("us", tz="UTC")))
    if since is not None:
        table = table.filter(pc.greater_equal(table["ts"], pa.scalar(since, table["ts"].type)))
    if until is not None:
        table = table.filter(pc.less(table["ts"], pa.scalar(until, table["ts"].type)))
    return table


def labelled_pairs(events: pa.Table) -> pd.DataFrame:
    """One row per shown (user, debunk): label 2 shared, 1 clicked, 0 shown only; first ts."""
    df = events.select(["user_id", "debunk_id", "event", "ts"]).to_pandas()
    df = df[df["event"].isin(SHOWN_EVENTS)]
    if df.empty:
        return pd.DataFrame(columns=["user_id", "debunk_id", "label", "ts"])
    df["label"] = np.select([df["event"] == "share", df["event"] == "click"], [2, 1], 0)
    out = df.groupby(["user_id", "debunk_id"], sort=True).agg(label=("label", "max"),
                                                            ts=("ts", "min"))  # fmt: skip
    return out.reset_index()


@dataclass(frozen=True)
class FeatureRows:
    """A sparse row-normalised feature matrix, its row ids and its feature names."""

    ids: list[str]
    names: list[str]
    matrix: sp.csr_matrix


def _rows(ids: list[str], feats: list[list[str]]) -> FeatureRows:
    names = sorted({f for row in feats for f in row})
    col = {n: i for i, n in enumerate(names)}
    indptr = np.cumsum([0] + [len(r) for r in feats])
    indices = np.array([col[f] for r in feats for f in r], dtype=np.int32)
    data = np.concatenate([np.full(len(r), 1.0 / len(r), np.float32) for r in feats if r] or [[]])
    m = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(len(ids), len(names)))
    return FeatureRows(ids, names, m)


def length_bucket(title: str) -> str:
    """short (< 16 chars), medium (< 32) or long."""
    n = len(title)
    return "short" if n < 16 else "medium" if n < 32 else "long"


def debunk_features(debunks: list[Debunk], rumors: dict[str, Rumor]) -> FeatureRows:
    """Metadata features only (no identity): a debunk with no events is placed by its kind."""
    feats = []
    for d in debunks:
        rumor = rumors.get(d.rumor_ids[0]) if d.rumor_ids else None
        feats.append(
            [
                f"authority:{d.authority}",
                f"format:{d.format}",
                f"publisher:{d.publisher}",
                f"language:{d.language}",
                f"length:{length_bucket(d.title)}",
                f"category:{rumor.category if rumor else 'other'}",
                f"format_authority:{d.format}:{d.authority}",
            ]
        )
    return _rows([d.debunk_id for d in debunks], feats)


COMMON_USER_FEATURE = "user:*"  # every user has it: the representation of a user never seen


TASTE_PRIOR = 3.0  # pseudo-shows at the population click rate that smooth a user's rates
TASTE_SCALE = 0.5  # taste feature values are scaled log rate ratios (about -1..1)


def taste_features(
    pairs: pd.DataFrame, debunks: list[Debunk], user_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user click history by debunk format and authority, from labelled pairs (training
    events only): for each kind k the user was shown, the smoothed log ratio of their click
    rate on k to the population's, log((c_k + m p) / (n_k + m)) - log(p); (rows, names,
    values) for the sparse user matrix. This is what carries a user's format preference and
    trust in official sources to the ranker (identity alone needs many clicks per user)."""
    kind = {d.debunk_id: (f"taste:format:{d.format}", f"taste:authority:{d.authority}")
            for d in debunks}  # fmt: skip
    df = pairs[pairs["debunk_id"].isin(kind) & pairs["user_id"].isin(user_ids)]
    empty = (np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.float32))
    if df.empty:
        return empty
    rate = float((pairs["label"] > 0).mean())
    if not 0 < rate < 1:
        return empty
    pos = (df["label"].to_numpy() > 0).astype(np.float64)
    ks = df["debunk_id"].map(kind)
    kinds = [ks.str[0].to_numpy(dtype=object), ks.str[1].to_numpy(dtype=object)]
    long = pd.DataFrame(
        {
            "user": np.concatenate([df["user_id"].to_numpy(dtype=object)] * 2),
            "kind": np.concatenate(kinds),
            "pos": np.concatenate([pos, pos]),
        }
    )
    agg = long.groupby(["user", "kind"], sort=True)["pos"].agg(["sum", "count"]).reset_index()
    smoothed = (agg["sum"] + TASTE_PRIOR * rate) / (agg["count"] + TASTE_PRIOR)
    values = (TASTE_SCALE * np.log(smoothed / rate)).to_numpy(np.float32)
    rows = pd.Index(user_ids).get_indexer(agg["user"])
    return rows.astype(np.int64), agg["kind"].to_numpy(dtype=object), values


def user_features(
    user_ids: list[str],
    exposures: pa.Table | None,
    rumors: dict[str, Rumor] | None = None,
    taste: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    identity: bool = True,
) -> FeatureRows:
    """Identity, the categories of rumors met, the strongest action, exposure volume
    (vectorised: one group-by, no per-user Python), each row normalised to sum 1; then the
    ``taste`` columns (see taste_features) with their own values."""
    n = len(user_ids)
    row_parts = [np.arange(n)]
    name_parts = [np.full(n, COMMON_USER_FEATURE, dtype=object)]
    if identity:
        row_parts.append(np.arange(n))
        name_parts.append(np.array([f"id:{u}" for u in user_ids], dtype=object))
    if exposures is not None and exposures.num_rows and n:
        keep = exposures.filter(pc.is_in(exposures["user_id"], pa.array(user_ids, pa.string())))
        df = keep.select(["user_id", "rumor_id", "exposures", "strongest_action"]).to_pandas()
        df["row"] = pd.Index(user_ids).get_indexer(df["user_id"])
        df["strength"] = _strengths(df["strongest_action"])
        agg = df.groupby("row").agg(volume=("exposures", "sum"), strongest=("strength", "max"))
        rows = agg.index.to_numpy()
        bucket = np.minimum(np.log2(agg["volume"].to_numpy(np.float64) + 1).astype(int), 6)
        row_parts += [rows, rows]
        name_parts += [np.array([f"activity:{b}" for b in bucket], dtype=object),
                       np.array([f"strongest:{ACTIONS[int(a)]}" for a in agg["strongest"]],
                                dtype=object)]  # fmt: skip
        if rumors:
            cat = df["rumor_id"].map({r: x.category for r, x in rumors.items()})
            met = pd.DataFrame({"row": df["row"], "cat": cat}).dropna().drop_duplicates()
            row_parts.append(met["row"].to_numpy())
            name_parts.append(("met:" + met["cat"]).to_numpy(dtype=object))
    per_row = np.bincount(np.concatenate(row_parts), minlength=n).astype(np.float32)
    data_parts = [1.0 / per_row[r] for r in row_parts]
    if taste is not None and len(taste[0]):
        row_parts.append(taste[0])
        name_parts.append(taste[1])
        data_parts.append(taste[2])
    rows = np.concatenate(row_parts)
    names_all = np.concatenate(name_parts)
    names, cols = np.unique(names_all.astype(str), return_inverse=True)
    data = np.concatenate(data_parts)
    m = sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n, len(names)))
    return FeatureRows(list(user_ids), names.tolist(), m)


def _strengths(actions: pd.Series) -> np.ndarray:
    """Action names or codes as strengths 0..4."""
    if actions.dtype.kind in "iu":
        return actions.to_numpy(np.int64)
    return actions.map({a: i for i, a in enumerate(ACTIONS)}).fillna(0).to_numpy(np.int64)
