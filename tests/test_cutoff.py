"""The nightly's watermark rule: a finished day is covered whole, an open one up to the earlier of
the clock less the shipper's allowance and the lake's last row, rounded down to the hour."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from offline.join.engine import engine_named
from offline.nightly.cutoff import last_row_ts, run_watermark, watermark
from tests.fixtures.logs import t, write_logs

DAY = date(2026, 10, 5)


def _at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 10, 5, hour, minute, tzinfo=UTC).timestamp()


MIDNIGHT, NEXT = int(_at(0)), int(_at(0)) + 86_400


def test_a_finished_day_is_covered_whole_whatever_its_last_row() -> None:
    assert watermark(DAY, NEXT + 900, _at(21, 5), 900) == NEXT  # a quiet last hour: no gap
    assert watermark(DAY, NEXT + 86_400 * 40, None, 900) == NEXT


def test_an_open_day_stops_at_the_clock_less_the_allowance_or_the_last_row() -> None:
    assert watermark(DAY, _at(14, 38), _at(14, 36), 900) == int(_at(14))
    assert watermark(DAY, _at(14, 10), _at(14, 9), 900) == int(_at(13)), "14:10 - 15 min"
    assert watermark(DAY, _at(14, 38), _at(9, 59), 900) == int(_at(9)), "a shipper behind"
    assert watermark(DAY, _at(14, 38), _at(23, 0), 900) == int(_at(14)), "a row from the future"
    assert watermark(DAY, NEXT + 60, _at(23, 59), 900) == int(_at(23)), "just after midnight"
    assert watermark(DAY, _at(14, 38), None, 900) == MIDNIGHT, "no row yet: all live"
    assert watermark(DAY, _at(0, 5), _at(0, 4), 900) == MIDNIGHT


def test_the_last_row_is_read_from_the_run_dates_partition(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs", [("u1", "i1", t(5, 9), "feed", "click"),
                                          ("u1", "i1", t(5, 14), "feed", "click"),
                                          ("u1", "i1", t(4, 23), "feed", "click")])  # fmt: skip
    engine = engine_named("local")
    assert last_row_ts(logs, DAY, engine) == t(5, 14).timestamp()
    assert last_row_ts(logs, date(2026, 10, 6), engine) is None
    got = run_watermark(logs, DAY, engine, read_at=_at(16), settle_s=900)
    assert got == int(_at(14)), "a row at 14:00 does not show the 14:00 hour complete"
