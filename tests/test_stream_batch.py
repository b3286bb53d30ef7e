"""The consumer's fast path gives what the row-by-row path gives: raw stream entries as
columns (any field order, extra fields, packed rows, trimmed entries) and the column screen
against ``screen`` on seeded batches with and without bad rows. IO-free."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from domain.delivery import day_of
from domain.exposure_days import bucket_field
from domain.exposure_screen import decoded, screen, screen_columns
from feature_store.stream_batch import from_entries

NOW = 1_790_000_000.0
WINDOW_S = 30 * 86_400
TAGGED = {"i1": ("r1",), "i2": ("r2", "r1"), "i3": ("r3",)}
SCORES = {("i1", "r1"): 0.25, ("i2", "r1"): 0.5}
WATERMARK = int(NOW - 86_400) - int(NOW - 86_400) % 3_600  # on an hour, inside the batch span


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    return [p for kv in fields.items() for p in kv]


def test_entries_become_columns_whatever_their_layout() -> None:
    entries = [
        [b"1-0", _flat({b"user_id": b"u1", b"item_id": b"i1", b"ts": b"5", b"surface": b"feed",
                        b"action": b"click"})],
        [b"2-0", _flat({b"action": b"share", b"host": b"h", b"ts": b"6", b"item_id": b"i2",
                        b"surface": b"search", b"user_id": b"u2"})],
        [b"3-0", None],  # trimmed while pending
        [b"4-0", _flat({b"user_id": b"u3", b"item_id": b"i3"})],
        [b"5-0", _flat({b"rows": b"u4\ti1\t7\tfeed\tlike\nu5\ti2\nu6\ti3\t8\tfeed\tclick\textra"})],
    ]  # fmt: skip
    batch = from_entries(entries)
    assert batch.ids == [b"1-0", b"2-0", b"4-0", b"5-0"] and batch.gone == [b"3-0"]
    rows = sorted(zip(*batch.cols, strict=True))
    assert rows == sorted([
        (b"u1", b"i1", b"5", b"feed", b"click"), (b"u2", b"i2", b"6", b"search", b"share"),
        (b"u3", b"i3", b"", b"", b""), (b"u4", b"i1", b"7", b"feed", b"like"),
        (b"u5", b"i2", b"", b"", b""), (b"u6", b"i3", b"8", b"feed", b"click"),
    ])  # fmt: skip
    assert batch.rows == 6 and from_entries(None).ids == []


def _batch(rng: random.Random, n: int, bad: bool, iso: bool) -> tuple[list, ...]:
    """n seeded raw rows as columns; with ``bad``, about one in twenty breaks a rule; with
    ``iso``, about half the times are ISO 8601 text."""
    cols: tuple[list, ...] = ([], [], [], [], [])
    for _ in range(n):
        row = [f"u{rng.randrange(50)}".encode(), rng.choice([b"i1", b"i2", b"i3", b"x9"]),
               str(NOW - rng.randrange(3 * 86_400)).encode(), rng.choice([b"feed", b"search"]),
               rng.choice([b"impression", b"click", b"share"])]  # fmt: skip
        if iso and rng.random() < 0.5:  # a shipper writing ISO 8601 times
            stamp = datetime.fromtimestamp(float(row[2]), UTC).isoformat()
            row[2] = stamp.replace("+00:00", "Z").encode()
        if bad and rng.random() < 0.05:
            k, v = rng.choice([(0, b""), (0, b"u b"), (1, b"i{1}"), (2, b"soon"), (2, b""),
                               (2, b"nan"), (2, str(NOW + 9_999).encode()), (3, b"tv"),
                               (4, b"stare"), (2, b"2026-01-01T00:00:00Z"),
                               (2, b"inf")])  # fmt: skip
            row[k] = v
        for col, v in zip(cols, row, strict=True):
            col.append(v)
    return cols


@pytest.mark.parametrize("iso", [False, True])
@pytest.mark.parametrize("bad", [False, True])
@pytest.mark.parametrize("covered", [None, "WATERMARK"])
def test_the_column_screen_equals_the_row_screen(bad: bool, iso: bool, covered: str) -> None:
    rng = random.Random(19)
    by_bytes = {k.encode(): v for k, v in TAGGED.items()}

    def score(item: str, rumor: str) -> float:
        return SCORES.get((item, rumor), 1.0)

    for n in (1, 7, 400):
        cols = _batch(rng, n, bad, iso)
        covers = WATERMARK if covered else None
        fast = screen_columns(cols, by_bytes, now=NOW, window_s=WINDOW_S,
                              live_after=covers, score_of=score)  # fmt: skip
        slow = screen(decoded(cols), lambda i: TAGGED.get(i, ()), now=NOW, window_s=WINDOW_S,
                      live_after=covers, score_of=score)  # fmt: skip
        assert fast.counts() == slow.counts()
        assert sorted(fast.rejects) == sorted(slow.rejects)
        assert fast.parts == slow.parts
        assert fast.accepted + len(fast.rejects) == n
        assert n < 400 or (fast.covered > 0) == (covers is not None)
    assert fast.stored > 0 and any(s.tag_score < 1.0 for p in fast.parts.values()
                                   for s in p.values())  # fmt: skip
    hours = {int(f[:2]) for p in fast.parts.values() for f in p}
    assert len(hours) > 1 and all(f[2] == "|" for p in fast.parts.values() for f in p)


@pytest.mark.parametrize("bad", [False, True])
def test_a_scored_row_lands_in_its_hour_and_one_before_the_watermark_is_covered(
    bad: bool,
) -> None:
    """Both paths (a clean batch: the column path; one bad row: the row fallback) put a row
    through a matcher tag in its UTC hour's bucket with the tag's score, and count a row one
    second before the watermark as covered, storing nothing of it."""
    by_bytes = {k.encode(): v for k, v in TAGGED.items()}
    rows = [(b"u1", b"i1", str(WATERMARK - 1).encode(), b"feed", b"click"),
            (b"u1", b"i1", str(WATERMARK + 7).encode(), b"feed", b"share")]  # fmt: skip
    if bad:
        rows.append((b"u2", b"i1", b"", b"feed", b"click"))
    cols = tuple(list(c) for c in zip(*rows, strict=True))
    out = screen_columns(cols, by_bytes, now=NOW, window_s=WINDOW_S, live_after=WATERMARK,
                         score_of=lambda i, r: SCORES.get((i, r), 1.0))  # fmt: skip
    hour = datetime.fromtimestamp(WATERMARK, UTC).hour
    assert (out.covered, out.stored, len(out.rejects)) == (1, 1, int(bad))
    (part,) = out.parts[("u1", day_of(WATERMARK))].items()
    assert part[0] == bucket_field(hour, "r1")
    assert (part[1].exposures, part[1].first_ts, part[1].tag_score) == (1, WATERMARK + 7, 0.25)
