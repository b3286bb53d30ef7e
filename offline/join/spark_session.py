"""The one SparkSession of a process: created on first use with the engine's settings, quiet,
in UTC, and stopped at exit. pyspark is imported here only, lazily, with a clear error when the
``spark`` extra is not installed.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger("debunk.spark")

DEFAULT_MASTER = "local[2]"
MIN_JAVA = 17
_LOG4J = Path(__file__).with_name("spark_log4j2.properties")
# Settings every session gets unless the caller overrides them: timestamps are read and written
# in UTC (as the other engines do), and no console progress bars.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# For local masters only: no web UI (ports are shared on a developer machine), loopback
# networking, and few shuffle partitions (the default 200 are for clusters).
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
}

_lock = threading.Lock()
_session: Any = None


class SparkUnavailable(RuntimeError):
    """pyspark or a Java runtime it can use is not installed."""


def pyspark_module() -> Any:
    """The pyspark package, or SparkUnavailable saying how to install it."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "the spark join engine needs pyspark: pip install -e '.[spark]' (and Java 17+)"
        ) from None
    return pyspark


def java_version() -> int | None:
    """The major version ``java -version`` reports (JAVA_HOME's java first), None without one."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def unavailable_reason() -> str | None:
    """Why a Spark session cannot start here (no pyspark, no Java ≥ 17), None when it can."""
    try:
        pyspark_module()
    except SparkUnavailable as e:
        return str(e)
    version = java_version()
    if version is None:
        return "the spark join engine needs a Java runtime (17+): none found"
    if version < MIN_JAVA:
        return f"the spark join engine needs Java {MIN_JAVA}+: java -version reports {version}"
    return None


def session_conf(master: str, conf: dict[str, str] | None = None) -> dict[str, str]:
    """The settings a session starts with: the defaults, then ``conf`` on top."""
    out = dict(BASE_CONF)
    if master.startswith("local"):
        out.update(LOCAL_CONF)
    if _LOG4J.exists():
        java_opt = f"-Dlog4j2.configurationFile=file:{_LOG4J}"
        out["spark.driver.extraJavaOptions"] = java_opt
    out.update(conf or {})
    return out


def get_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """The process's SparkSession, created on first use (``master`` and ``conf`` apply then;
    a later call with other settings gets the running session, and a warning)."""
    global _session
    with _lock:
        if _session is not None:
            if master or conf:
                _warn_if_different(_session, master, conf or {})
            return _session
        reason = unavailable_reason()
        if reason:
            raise SparkUnavailable(reason)
        from pyspark.sql import SparkSession

        # Under spark-submit the master (and the rest) come from its command line.
        chosen = master or ("" if _under_spark_submit() else DEFAULT_MASTER)
        if chosen.startswith("local"):
            # Python workers (the executor materializer's tasks) run this interpreter, with
            # the project and its libraries, unless PYSPARK_PYTHON names another one; pyspark
            # reads only the variable.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName("debunk-nightly")
        if chosen:
            builder = builder.master(chosen)
        for key, value in session_conf(chosen, conf).items():
            builder = builder.config(key, value)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # pyspark on pandas 3
            _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO lines on every call
        atexit.register(stop_session)
        return _session


def _under_spark_submit() -> bool:
    """Whether spark-submit started this process (it hands over a running JVM gateway)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _warn_if_different(session: Any, master: str | None, conf: dict[str, str]) -> None:
    running = session.sparkContext.master
    if master and master != running:
        log.warning("a Spark session on %s is running: --spark-master %s ignored", running, master)
    for key, value in conf.items():
        if session.conf.get(key, None) != value:
            log.warning("a Spark session is running: %s=%s may not apply", key, value)


def stop_session() -> None:
    """Stop the process's session, if one was started (at exit, or by tests)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None
