"""The manifest of one state generation: which per-partition aggregates, tag set and lookback
window it was merged from, so the next run knows what it can reuse."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

# 2: pair aggregates carry last_share_ts. A manifest of another version is not reused.
MANIFEST_VERSION = 2
log = logging.getLogger("debunk.state")


@dataclass
class PartitionEntry:
    """What the state holds for one log partition."""

    fingerprint: str
    pairs: list[str]
    surfaces: list[str]
    rejects: list[str] = field(default_factory=list)
    # The watermark (unix s) its rows were cut at; None: every row (a day wholly before it).
    before: int | None = None

    def files(self) -> list[str]:
        return [*self.pairs, *self.surfaces, *self.rejects]


@dataclass
class Manifest:
    """Which partition aggregates, tag set and window make up one generation."""

    run_date: str = ""
    lookback_days: int = 0
    tags_file: str = ""
    partitions: dict[str, PartitionEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        if raw.get("version") != MANIFEST_VERSION:
            log.warning("%s: manifest version %s, not %s: rescanning every partition",
                        path, raw.get("version"), MANIFEST_VERSION)  # fmt: skip
            return cls()
        parts = {dt: PartitionEntry(**p) for dt, p in raw["partitions"].items()}
        return cls(raw["run_date"], raw["lookback_days"], raw["tags_file"], parts)

    def dump(self) -> str:
        return json.dumps(
            {
                "version": MANIFEST_VERSION,
                "run_date": self.run_date,
                "lookback_days": self.lookback_days,
                "tags_file": self.tags_file,
                "partitions": {dt: e.__dict__ for dt, e in sorted(self.partitions.items())},
            },
            indent=1,
            sort_keys=True,
        )

    def referenced(self) -> set[str]:
        files = {self.tags_file} if self.tags_file else set()
        for e in self.partitions.values():
            files.update(e.files())
        return files
