"""The judged search sets: hand-written queries about CED rumors, each judged by a person.

The rows live as JSON Lines in ``bench/judged/<kind>.jsonl`` and reference library rumors by CED
``post_id`` only (no CED text is committed). This module reads and checks them; it needs no CED
data, so the schema test runs on a fresh clone.

One row: ``id``, ``kind``, ``query``, ``expected`` (the post_id of the rumor a right answer names,
or null when no rumor should be answered), ``half`` (tune or test), ``note``; optional ``also``
(other post_ids of the same claim, checked by hand, accepted as right answers), ``style``
(search or paraphrase: how a ``traditional`` row was written), ``near`` (for ``same_topic``: the
post whose topic the row shares without sharing its claim) and ``round`` (2 to 13 for the rows
written in the second to thirteenth round, each before any of its rows was scored: the held-out
measure of the round that wrote them; absent means round 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FOLDER = Path(__file__).parent / "judged"
POSITIVE_KINDS = ("search", "paraphrase", "traditional", "synonym")
NEGATIVE_KINDS = ("everyday", "same_topic")
KINDS = POSITIVE_KINDS + NEGATIVE_KINDS
HALVES = ("tune", "test")
STYLES = ("search", "paraphrase")
# The family decides the precision target and the threshold a row is answered with: search
# queries (SearchTop) and posted text (GroupWarnings, the auto-tagger) are thresholded apart.
FAMILY_OF_KIND = {
    "search": "search",
    "synonym": "search",
    "everyday": "search",
    "paraphrase": "text",
    "same_topic": "text",
}
REQUIRED = ("id", "kind", "query", "expected", "half", "note")
OPTIONAL = ("also", "style", "near", "round")
ROUNDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)


@dataclass(frozen=True)
class Judged:
    """One judged query."""

    id: str
    kind: str
    query: str
    expected: str | None
    half: str
    note: str
    also: tuple[str, ...] = field(default_factory=tuple)
    style: str | None = None
    near: str | None = None
    round: int = 1

    @property
    def family(self) -> str:
        """ "search" or "text": which threshold answers this row."""
        if self.kind == "traditional":
            return "search" if self.style == "search" else "text"
        return FAMILY_OF_KIND[self.kind]

    @property
    def accepted(self) -> frozenset[str]:
        """Post ids a right answer may name (empty for negative kinds)."""
        if self.expected is None:
            return frozenset()
        return frozenset((self.expected, *self.also))


def row_errors(row: dict, where: str) -> list[str]:
    """What is wrong with one raw row (empty when it is well formed)."""
    errors = [f"{where}: missing {k}" for k in REQUIRED if k not in row]
    errors += [f"{where}: unknown field {k}" for k in row if k not in REQUIRED + OPTIONAL]
    if errors:
        return errors
    kind, expected = row["kind"], row["expected"]
    if kind not in KINDS:
        errors.append(f"{where}: kind {kind!r} is not one of {KINDS}")
    if row["half"] not in HALVES:
        errors.append(f"{where}: half {row['half']!r} is not tune or test")
    if not isinstance(row["query"], str) or not row["query"].strip():
        errors.append(f"{where}: empty query")
    if not isinstance(row["id"], str) or not row["id"]:
        errors.append(f"{where}: empty id")
    if kind in NEGATIVE_KINDS and expected is not None:
        errors.append(f"{where}: a {kind} row expects no rumor, found {expected!r}")
    if kind in POSITIVE_KINDS and not (isinstance(expected, str) and expected):
        errors.append(f"{where}: a {kind} row needs the expected post_id")
    also = row.get("also", [])
    if not isinstance(also, list) or not all(isinstance(a, str) and a for a in also):
        errors.append(f"{where}: also must be a list of post_ids")
    elif expected is None and also:
        errors.append(f"{where}: also without an expected rumor")
    if kind == "traditional" and row.get("style") not in STYLES:
        errors.append(f"{where}: a traditional row needs style search or paraphrase")
    if "near" in row and not (kind == "same_topic" and isinstance(row["near"], str)):
        errors.append(f"{where}: near is only for same_topic rows")
    if row.get("round", 1) not in ROUNDS:
        errors.append(f"{where}: round must be one of {ROUNDS}")
    return errors


def load_raw(folder: Path = FOLDER) -> list[tuple[str, dict]]:
    """(file:line, row) for every line of every ``*.jsonl`` file in ``folder``, sorted by file."""
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                out.append((f"{path.name}:{n}", json.loads(line)))
    return out


def errors(raw: list[tuple[str, dict]]) -> list[str]:
    """Every schema problem of the rows, duplicate ids included."""
    found: list[str] = []
    seen: dict[str, str] = {}
    for where, row in raw:
        found += row_errors(row, where)
        rid = row.get("id")
        if rid in seen:
            found.append(f"{where}: id {rid!r} already used at {seen[rid]}")
        elif isinstance(rid, str):
            seen[rid] = where
    return found


def load(folder: Path = FOLDER) -> list[Judged]:
    """The judged rows, checked; raises ValueError naming every bad row."""
    raw = load_raw(folder)
    problems = errors(raw)
    if problems:
        raise ValueError("bad judged rows:\n" + "\n".join(problems))
    return [
        Judged(
            id=r["id"],
            kind=r["kind"],
            query=r["query"],
            expected=r["expected"],
            half=r["half"],
            note=r["note"],
            also=tuple(r.get("also", ())),
            style=r.get("style"),
            near=r.get("near"),
            round=r.get("round", 1),
        )
        for _, r in raw
    ]
