"""The Spark engine beyond the contract suite: logs named by Hadoop URIs, its command-line
options, and a whole ``debunk nightly --engine spark`` whose snapshot answers every user as the
local engine's does. Skipped, with the reason, where pyspark or Java 17+ is missing."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from cli.main import main
from feature_store import keys
from offline.io.logs import LogReadError, LogSchemaError
from offline.join import spark_session
from offline.join.contracts import JoinSummary, prepare_tags
from offline.join.engine import engine_named, is_remote, join_exposures
from tests.fixtures.logs import LOG_SCHEMA, t, tags, write_logs

TAGS = tags(("i1", "rA"), ("i2", "rA"), ("i3", "rB"))
ROWS = [
    ("u1", "i1", t(1, 8), "feed", "impression"),
    ("u1", "i2", t(2, 9), "group", "share"),
    ("u2", "i3", t(2, 1), "comment", "like"),
    ("", "i3", t(2, 2), "feed", "click"),
]


def test_hadoop_uris_are_told_from_local_paths() -> None:
    for uri in ("s3a://lake/logs/dt=2026-10-01/a.parquet", "hdfs://nn:8020/x", "file:/tmp/a"):
        assert is_remote(uri), uri
    for path in ("/tmp/logs/a.parquet", "logs/dt=2026-10-01/a.parquet", "C.parquet"):
        assert not is_remote(path), path


def uri(path: Path) -> str:
    """A local file as a Hadoop URI (Hadoop takes paths as written: no percent-escapes)."""
    return f"file://{path}"


def test_files_named_by_uri_scan_as_local_paths_do(spark: None, tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs", ROWS)
    files = sorted(logs.glob("dt=*/*.parquet"))
    engine = engine_named("spark")
    by_path, by_uri = JoinSummary(), JoinSummary()
    rejected: list[tuple[str, str]] = []
    local = engine.scan(files, prepare_tags(TAGS), by_path)
    remote = engine.scan(
        [uri(f) for f in files], prepare_tags(TAGS), by_uri,
        sink=lambda rows, reason, path: rejected.append((reason, path)),
    )  # fmt: skip
    keys_ = [("user_id", "ascending"), ("rumor_id", "ascending")]
    assert remote.pairs.sort_by(keys_).equals(local.pairs.sort_by(keys_))
    assert by_uri.as_dict() == by_path.as_dict() and by_uri.rows_kept == 3
    assert rejected == [("null_or_empty_user_id", uri(files[1]))]  # named as it was given


def test_a_hadoop_folder_is_listed_and_joined_as_a_local_one(
    spark: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logs = write_logs(tmp_path / "logs", ROWS)
    (logs / "dt=2026-10-02" / "_SUCCESS").write_text("")  # a writer's marker, not a log file
    want, expected = join_exposures(logs, TAGS, engine="local")
    got, summary = join_exposures(uri(logs), TAGS, engine=engine_named("spark"))
    assert got.equals(want) and got.num_rows == 2
    assert (summary.partitions, summary.files, summary.rows_read) == (2, 2, 4)
    assert summary.rows_rejected == expected.rows_rejected == {"null_or_empty_user_id": 1}
    days, _ = engine_named("spark").log_files(uri(logs), ["2026-10-02", "2026-10-09"])
    assert days == ["2026-10-02", "2026-10-09"]
    tags_file = tmp_path / "tags.parquet"
    pq.write_table(TAGS, tags_file)
    argv = ["exposures", "--logs", uri(logs), "--tags", str(tags_file), "--out",
            str(tmp_path / "out"), "--engine", "spark"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 2
    assert pq.read_table(tmp_path / "out" / "exposures.parquet").equals(want)


def test_the_local_engines_refuse_a_hadoop_uri(tmp_path: Path) -> None:
    for name in ("local", "duckdb"):
        with pytest.raises(ValueError, match=r"a Hadoop URI needs --engine spark"):
            join_exposures(uri(tmp_path), TAGS, engine=name)
        with pytest.raises(ValueError, match=r"a Hadoop URI needs --engine spark"):
            engine_named(name).scan([uri(tmp_path)], prepare_tags(TAGS), JoinSummary())


def test_a_remote_file_with_an_unusable_schema_fails_naming_file_and_column(
    spark: None, tmp_path: Path
) -> None:
    bad = tmp_path / "dt=2026-10-01" / "broken.parquet"
    bad.parent.mkdir(parents=True)
    columns = {"user_id": ["u1"], "item_id": ["i1"], "surface": ["feed"], "action": ["click"]}
    engine = engine_named("spark")

    def scan() -> None:
        engine.scan([uri(bad)], prepare_tags(TAGS), JoinSummary())

    pq.write_table(pa.table({**columns, "ts": [5]}), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: column 'ts' has type bigint"):
        scan()
    pq.write_table(pa.table(columns), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: missing column 'ts'"):
        scan()
    pq.write_table(pa.table({**columns, "ts": [t(3)], "user_id": [7]}), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: column 'user_id' has type bigint"):
        scan()
    bad.write_text("not parquet")
    with pytest.raises(LogSchemaError, match=r"broken.parquet: not a readable Parquet file"):
        scan()


def test_a_corrupt_page_fails_the_scan_naming_the_file(spark: None, tmp_path: Path) -> None:
    bad = tmp_path / "dt=2026-10-01" / "part-1.parquet"
    bad.parent.mkdir(parents=True)
    n = 60_000
    table = pa.table(
        {"user_id": [f"u{i % 5000}" for i in range(n)], "ts": [t(1)] * n,
         "item_id": [f"i{i % 300}" for i in range(n)], "surface": ["feed"] * n,
         "action": ["click"] * n},
        schema=LOG_SCHEMA,
    )  # fmt: skip
    pq.write_table(table, bad, row_group_size=20_000)
    raw = bytearray(bad.read_bytes())
    for k in range(len(raw) // 3, len(raw) // 3 + 2000):  # footer intact, a data page garbled
        raw[k] ^= 0x5A
    bad.write_bytes(bytes(raw))
    with pytest.raises(LogReadError, match=rf"^{re.escape(str(bad))}: corrupt Parquet data"):
        engine_named("spark").scan([bad], prepare_tags(tags(("i1", "r1"))), JoinSummary())


def test_without_pyspark_or_java_17_the_reason_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spark_session, "pyspark_module", lambda: object())  # pyspark "there"
    monkeypatch.setattr(spark_session, "java_version", lambda: 11)
    assert spark_session.unavailable_reason() == (
        "the spark join engine needs Java 17+: java -version reports 11"
    )
    monkeypatch.setattr(spark_session, "java_version", lambda: None)
    assert spark_session.unavailable_reason() == (
        "the spark join engine needs a Java runtime (17+): none found"
    )
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the extra were not installed
    assert spark_session.unavailable_reason() == (
        "the spark join engine needs pyspark: pip install -e '.[spark]' (and Java 17+)"
    )
    with pytest.raises(spark_session.SparkUnavailable, match=r"pip install -e '\.\[spark\]'"):
        spark_session.pyspark_module()


def test_the_pyspark_3_paths_move_the_same_arrow(
    spark: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyspark 3.5 has neither createDataFrame(pa.Table) nor DataFrame.toArrow: the engine then
    goes through pandas in, and Arrow batches out; both must give the same tables."""
    from offline.join.spark_engine import from_arrow, to_arrow

    session = spark_session.get_session()
    table = pa.table(
        {"user_id": ["u1", "u2"], "first_ts": pa.array([t(1), None], pa.timestamp("us", "UTC")),
         "action_code": pa.array([4, 0], pa.int8()), "on_feed": [True, False]}
    )  # fmt: skip
    native = to_arrow(from_arrow(session, table))

    class OldFrame:  # what a pyspark 3.5 DataFrame offers
        def __init__(self, frame: object) -> None:
            self._frame = frame
            self.schema = frame.schema  # type: ignore[attr-defined]

        def _collect_as_arrow(self) -> list[pa.RecordBatch]:
            return self._frame._collect_as_arrow()  # type: ignore[attr-defined]

    class OldPyspark:
        __version__ = "3.5.3"

    monkeypatch.setattr(spark_session, "pyspark_module", lambda: OldPyspark)
    old = to_arrow(OldFrame(from_arrow(session, table)))
    assert old.equals(native) and native.cast(table.schema).equals(table)
    empty = to_arrow(OldFrame(from_arrow(session, table.slice(0, 0))))
    assert empty.num_rows == 0 and empty.schema.names == table.schema.names


def test_spark_options_need_the_spark_engine(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["exposures", "--logs", str(tmp_path), "--tags", str(tmp_path / "t.csv"), "--out",
            str(tmp_path / "o")]  # fmt: skip
    assert main([*args, "--spark-master", "local[1]"]) == 2
    assert "--spark-master and --spark-conf need --engine spark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--engine", "spark", "--spark-conf", "spark.executor.memory"])
    assert "is not KEY=VALUE" in capsys.readouterr().err


def _user_hashes(client: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    """Every user's exposure hash of the current snapshot, by user key suffix."""
    version = client.get(keys.CURRENT).decode()
    prefix = keys.user_exposures_prefix(version)
    return {
        key[len(prefix) :]: client.hgetall(key)
        for key in sorted(client.scan_iter(match=prefix + b"*", count=1000))
    }


def test_a_spark_night_serves_every_user_what_a_local_night_does(
    spark: None,
    small_world: Path,
    tmp_path: Path,
    client: redis.Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    answers = {}
    for engine in ("local", "spark"):
        client.flushdb()
        state = tmp_path / engine
        argv = ["nightly", "--data", str(small_world), "--date", "2026-10-05", "--state",
                str(state), "--no-train", "--engine", engine]  # fmt: skip
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["state"]["engine"] == engine
        exposures = pq.read_table(state / "current" / "exposures.parquet")
        audience = pq.read_table(state / "current" / "audience.parquet")
        join = {k: v for k, v in summary["state"]["join"].items() if k != "seconds"}
        answers[engine] = (exposures, audience, join, _user_hashes(client))
    local, spark_ = answers["local"], answers["spark"]
    assert spark_[0].equals(local[0]) and local[0].num_rows > 100
    assert spark_[1].equals(local[1])
    assert spark_[2] == local[2]
    assert len(local[3]) > 50 and spark_[3] == local[3]
