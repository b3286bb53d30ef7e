"""The nightly fold of the live catalog layer: read the layer when the run starts, keep what it
held in the state folder (``catalog_overrides.jsonl``, applied by every later night, so a change
is never lost once it leaves Redis), apply it over the input files, and after the flip delete
from the layer only the entries still equal to what was read: a change made during the run
stays live until the next night folds it. Entries are full records, so a change the service
applies over a snapshot that already holds it changes nothing: never applied twice."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from domain.live import TagChange
from domain.records import Debunk, Rumor
from feature_store.live_catalog import LayerRead, clear_folded, read_layer
from offline.io.contracts import TAG_SCHEMA
from offline.io.tempfiles import temp_path

OVERRIDES = "catalog_overrides.jsonl"


@dataclass
class Fold:
    """What one night applies over its input files: every override kept so far with the layer
    read at the start of the run over them, and that read (for the clearing after the flip)."""

    read: LayerRead
    rumors: dict[str, Rumor] = field(default_factory=dict)
    debunks: dict[str, Debunk] = field(default_factory=dict)
    tags: dict[str, TagChange] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        """The layer's seq when the run read it (``live_seq_folded`` in the snapshot meta)."""
        return self.read.layer.seq


def then(first: TagChange, later: TagChange) -> TagChange:
    """One item's tag changes ``first`` followed by ``later``."""
    added = {r: v for r, v in first.added.items() if r not in later.removed}
    removed = (first.removed - set(later.added)) | later.removed
    return TagChange({**added, **later.added}, frozenset(removed))


def start_fold(client, state_dir: Path) -> Fold:
    """Read the layer, merge it over the kept overrides and save them (before any flip)."""
    fold = load_overrides(state_dir, read_layer(client))
    layer = fold.read.layer
    fold.rumors.update(layer.rumors)
    fold.debunks.update(layer.debunks)
    for item, change in layer.tags.items():
        fold.tags[item] = then(fold.tags.get(item, TagChange()), change)
    if not layer.empty:
        save_overrides(state_dir, fold)
    return fold


def load_overrides(state_dir: Path, read: LayerRead) -> Fold:
    """The overrides earlier nights kept (none before the first fold)."""
    fold = Fold(read)
    path = state_dir / OVERRIDES
    if not path.exists():
        return fold
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            kind, ident, value = row["kind"], row["id"], row["value"]
            if kind == "rumor":
                fold.rumors[ident] = Rumor.from_dict(value)
            elif kind == "debunk":
                fold.debunks[ident] = Debunk.from_dict(value)
            elif kind == "tag":
                fold.tags[ident] = TagChange.from_dict(value)
    return fold


def save_overrides(state_dir: Path, fold: Fold) -> Path:
    """Write every override, sorted, aside and renamed into place."""
    rows = [("rumor", k, v.to_dict()) for k, v in fold.rumors.items()]
    rows += [("debunk", k, v.to_dict()) for k, v in fold.debunks.items()]
    rows += [("tag", k, v.to_dict()) for k, v in fold.tags.items()]
    path = state_dir / OVERRIDES
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with tmp.open("w", encoding="utf-8") as f:
        for kind, ident, value in sorted(rows, key=lambda r: (r[0], r[1])):
            f.write(json.dumps({"kind": kind, "id": ident, "value": value}, sort_keys=True,
                               ensure_ascii=False) + "\n")  # fmt: skip
    os.replace(tmp, path)
    return path


def apply_rumors(rumors: list[Rumor], fold: Fold) -> list[Rumor]:
    """The input rumors with the overrides replacing or adding to them (cluster left to the
    night's own clustering)."""
    by_id = {r.rumor_id: r for r in rumors}
    by_id.update(fold.rumors)
    return list(by_id.values())


def apply_debunks(debunks: list[Debunk], fold: Fold) -> list[Debunk]:
    """The input debunks with the overrides replacing or adding to them."""
    by_id = {d.debunk_id: d for d in debunks}
    by_id.update(fold.debunks)
    return list(by_id.values())


def apply_tags(tags: pa.Table, fold: Fold) -> pa.Table:
    """The tag table (TAG_SCHEMA) without the tags taken off live, with those added live."""
    if not fold.tags:
        return tags
    off = {(i, r) for i, c in fold.tags.items() for r in c.removed}
    off |= {(i, r) for i, c in fold.tags.items() for r in c.added}  # re-added with their source
    pairs = [f"{i}\x1f{r}" for i, r in off]
    keys = pc.binary_join_element_wise(tags["item_id"], tags["rumor_id"], "\x1f")
    kept = tags.filter(pc.invert(pc.is_in(keys, value_set=pa.array(pairs, pa.string()))))
    added = [(i, r, s, v) for i, c in sorted(fold.tags.items()) for r, (s, v) in c.added.items()]
    extra = pa.table(
        {name: pa.array([row[n] for row in added], TAG_SCHEMA.field(name).type)
         for n, name in enumerate(TAG_SCHEMA.names)},
        schema=TAG_SCHEMA,
    )  # fmt: skip
    return pa.concat_tables([kept.cast(TAG_SCHEMA), extra])


def finish_fold(client, fold: Fold) -> int:
    """After the flip: delete the layer entries the run folded and nobody changed since."""
    return clear_folded(client, fold.read)
