"""The one place a SparkSession is made. Called from job ``main()``s and the CLI, never at import.

- local: master from settings (``local[*]``), Delta jars resolved from Maven Central through
  ``spark.jars.packages`` (cached in ~/.ivy2*, which also reads ~/.m2).
- cluster: master, resources and the Delta package (``--packages``) come from spark-submit.
- databricks: the active session is reused; Delta is built in.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from pyspark.sql import SparkSession

from memberlake.io.delta import DEFAULT_PROPERTIES
from memberlake.settings import Settings

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
MIN_JAVA = 17


class PrerequisiteError(RuntimeError):
    """A missing prerequisite (Java), reported with how to install it."""


def java_banner() -> tuple[str, str] | None:
    """(path, ``java -version`` output) of the java on JAVA_HOME or PATH, None when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    banner = _version_output(java)
    return None if banner is None else (java, banner)


@lru_cache(maxsize=4)
def _version_output(java: str) -> str | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stderr + out.stdout


def java_version() -> int | None:
    """Major version of the java on JAVA_HOME or PATH, None when there is none."""
    found = java_banner()
    match = re.search(r'version "(\d+)(?:\.(\d+))?', found[1]) if found else None
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_java() -> None:
    version = java_version()
    if version is None:
        raise PrerequisiteError(
            "Java not found: Spark needs Java 17 or newer. Install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) "
            "or set JAVA_HOME."
        )
    if version < MIN_JAVA:
        raise PrerequisiteError(
            f"Java {version} found, Spark 4 needs Java {MIN_JAVA}+: install openjdk-17 and "
            "point JAVA_HOME at it."
        )


def _on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


# A whole-stage generated method above 8,000 bytes of bytecode is never JIT-compiled by HotSpot
# and runs interpreted; Spark's default limit (65,535) lets wide projections such as clean's
# standardisation of events land there. At 8,000 Spark falls back to per-expression generated
# code instead (events' standardisation at 1M rows: 11.6 s -> 4.5 s; figures in docs/operations.md).
HUGE_METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit"
HUGE_METHOD_BYTES = "8000"


def base_conf(settings: Settings) -> dict[str, str]:
    """Spark conf every memberlake session gets (pytest.ini mirrors it for the test session)."""
    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "static",
        HUGE_METHOD_LIMIT: HUGE_METHOD_BYTES,
    }
    for key, value in DEFAULT_PROPERTIES.items():
        conf[f"spark.databricks.delta.properties.defaults.{key}"] = value
    conf.update(settings.spark.conf)
    return conf


# Where the JVM's own output (Ivy's resolution report, Spark's log4j lines) goes when this process
# starts Spark: a log file (the default: the console shows memberlake's own lines) or the console.
_JVM_OUTPUT = {"console": False}
LOG_DIR_ENV = "MEMBERLAKE_LOG_DIR"


def show_spark_output(verbose: bool) -> None:
    """``--verbose``: let Spark's and Ivy's own output through to the console."""
    _JVM_OUTPUT["console"] = verbose


def _log_folder() -> str:
    folder = os.environ.get(LOG_DIR_ENV) or os.path.join(tempfile.gettempdir(), "memberlake-logs")
    os.makedirs(folder, exist_ok=True)
    return folder


def _spark_log_path() -> str:
    folder = _log_folder()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(folder, f"spark-{stamp}-{os.getpid()}.log")


@contextmanager
def _jvm_output_to_file() -> Iterator[str | None]:
    """While the JVM starts, this process's stdout and stderr file descriptors point at a log file,
    which the JVM inherits and keeps: Ivy's report and Spark's WARN lines land there, not on the
    console. Python's own streams are restored at once (they are the same descriptors again)."""
    if _JVM_OUTPUT["console"] or os.environ.get("PYSPARK_GATEWAY_PORT"):
        yield None   # asked for, or the JVM is already up (spark-submit): its output is not ours to move
        return
    path = _spark_log_path()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield path
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _class_archive(settings: Settings, conf: dict[str, str]) -> Path | None:
    """The class archive for the JVM this process is about to start (``memberlake.class_sharing``),
    or None: turned off, the JVM already up (spark-submit), no java found, or no archive that
    exists or could be made."""
    from memberlake import class_sharing

    found = java_banner()
    if not settings.spark.class_sharing or os.environ.get("PYSPARK_GATEWAY_PORT") or found is None:
        return None
    archive = class_sharing.archive_path(found[1], found[0], conf)
    return archive if class_sharing.usable(archive) else None


def _start(builder: SparkSession.Builder, conf: dict[str, str], archive: Path | None) -> tuple[SparkSession, bool]:
    """getOrCreate with ``conf``, the class archive's Java options added; a JVM that does not start
    with an existing archive is started once more without it (and the archive deleted: True)."""
    from memberlake import class_sharing

    def create(options: dict[str, str]) -> SparkSession:
        for key, value in {**conf, **options}.items():
            builder.config(key, value)   # the builder keeps options: a retry overrides, never inherits
        return builder.getOrCreate()

    if archive is None:
        return create({}), False
    existing = conf.get(class_sharing.JAVA_OPTIONS, "")
    recording = not archive.is_file()
    try:
        options = class_sharing.java_options(None if recording else archive, existing, _log_folder())
        spark = create({class_sharing.JAVA_OPTIONS: options})
    except Exception:
        if recording:
            raise
        archive.unlink(missing_ok=True)
        return create({class_sharing.JAVA_OPTIONS: existing}), True
    if recording:
        gateway = getattr(spark.sparkContext._gateway, "proc", None)
        class_sharing.record(archive, getattr(gateway, "pid", None))
    return spark, False


def get_spark(settings: Settings) -> SparkSession:
    """Return the session for ``settings.env``, creating it if needed."""
    if settings.env == "databricks" or _on_databricks():
        active = SparkSession.getActiveSession()
        if active is not None:
            log.info("reusing the active Databricks session")
            active.conf.set("spark.sql.session.timeZone", "UTC")
            active.conf.set(HUGE_METHOD_LIMIT, HUGE_METHOD_BYTES)
            return active
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    check_java()
    builder = SparkSession.builder.appName(settings.spark.app_name)
    if settings.env == "local":
        builder = builder.master(settings.spark.master or "local[*]")
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        # Python workers (pandas UDFs) must use this interpreter, the one with the packages.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if settings.spark.driver_memory:
            builder = builder.config("spark.driver.memory", settings.spark.driver_memory)
    elif settings.spark.master:
        builder = builder.master(settings.spark.master)
    # Takes effect when this process starts the JVM (local runs, plain python); under
    # spark-submit the JVM is already up and --packages must bring Delta (see README).
    conf = {"spark.jars.packages": settings.spark.delta_package, **base_conf(settings)}
    archive = _class_archive(settings, conf)
    with _jvm_output_to_file() as path:
        try:
            spark, discarded = _start(builder, conf, archive)
        except Exception:
            if path:   # the JVM's reason is in its log
                sys.stderr.write(f"Spark did not start; the end of its log ({path}):\n{_tail(path)}")
            raise
    if discarded:   # said here, on the console: inside the block above it would go to the JVM's log
        log.warning("the JVM did not start with its class archive %s: deleted it and started without", archive)
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark %s session ready (master %s)%s", spark.version, spark.sparkContext.master,
             f"; Spark's own log: {path}" if path else "")
    return spark
