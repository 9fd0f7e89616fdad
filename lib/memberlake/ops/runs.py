"""The ``job_runs`` record every job appends: parameters, timing, rows, Delta versions, errors.

Used as a context manager around a job's body. The run's row is the commit point of its outputs:
every Delta commit the job makes is tagged with the run (:mod:`memberlake.io.commits`) and
readers see it only once the row says ``succeeded``. A failed job is recorded with its error and
the exception propagates; its commits stay invisible, and the next write to each table rolls them
back. A killed job records nothing, with the same effect.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from memberlake.contract import Tables
from memberlake.io.commits import RunTag, current_tag, set_current
from memberlake.io.delta import Lakehouse
from memberlake.io.lock import writer_lock
from memberlake.ops.checks import check_written
from memberlake.ops.progress import live_progress
from memberlake.settings import MonitoringSettings

log = logging.getLogger(__name__)

JOB_RUNS_SCHEMA = T.StructType([
    T.StructField("job", T.StringType()),
    T.StructField("run_id", T.StringType()),
    T.StructField("parameters", T.StringType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("ended_at", T.TimestampType()),
    T.StructField("duration_s", T.DoubleType()),
    T.StructField("status", T.StringType()),
    T.StructField("rows_read", T.MapType(T.StringType(), T.LongType())),
    T.StructField("rows_written", T.MapType(T.StringType(), T.LongType())),
    T.StructField("versions_read", T.MapType(T.StringType(), T.LongType())),
    T.StructField("versions_written", T.MapType(T.StringType(), T.LongType())),
    T.StructField("error", T.StringType()),
])


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


@dataclass
class Run:
    """What a job fills in while it runs; written to ``job_runs`` when it ends."""

    job: str
    run_id: str
    parameters: dict[str, Any]
    started_at: datetime
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    versions_read: dict[str, int] = field(default_factory=dict)
    versions_written: dict[str, int] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic)
    _last: list[str] = field(default_factory=list)   # the last stage line, for the live progress line
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)   # entities done in threads record here

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the run is recorded as succeeded, never if it fails: for effects
        outside the lakehouse that readers must not see from a failed run (a registry alias)."""
        self._after_commit.append(action)

    def stage(self, message: str, *args: Any) -> None:
        """Progress line: stage and elapsed time since the job started."""
        log.info("[%s %6.1fs] " + message, self.job, time.monotonic() - self._t0, *args)
        self._last[:] = [(message % args) if args else message]

    def record_read(self, table: str, rows: int | None = None, version: int | None = None) -> None:
        """Record that the run read ``version`` of ``table`` (and how many rows)."""
        with self._lock:
            if rows is not None:
                self.rows_read[table] = self.rows_read.get(table, 0) + int(rows)
            if version is not None:
                self.versions_read[table] = int(version)

    def record_write(self, table: str, rows: int, version: int | None = None) -> None:
        """Record that the run wrote ``rows`` rows to ``table``, leaving it at ``version`` (the
        newest one recorded stays: threads of one job may record a shared table out of order)."""
        with self._lock:
            self.rows_written[table] = self.rows_written.get(table, 0) + int(rows)
            if version is not None:
                self.versions_written[table] = max(int(version), self.versions_written.get(table, -1))


def _row(run: Run, status: str, error: str | None) -> tuple:
    ended = datetime.now(timezone.utc)
    return (
        run.job, run.run_id, json.dumps(run.parameters, sort_keys=True, default=str),
        run.started_at, ended, round(time.monotonic() - run._t0, 3), status,
        run.rows_read, run.rows_written, run.versions_read, run.versions_written, error,
    )


@contextmanager
def recorded_run(spark: SparkSession, lakehouse: Lakehouse, job: str,
                 parameters: dict[str, Any], run_id: str | None = None,
                 monitoring: MonitoringSettings | None = None) -> Iterator[Run]:
    """Yield a :class:`Run`; append it to ``job_runs`` as succeeded or failed. The lakehouse's
    writer lock is held throughout (:mod:`memberlake.io.lock`): one job writes at a time. With
    ``monitoring``, the data-quality checks of the tables the run wrote are evaluated before its
    outputs are published (:mod:`memberlake.ops.checks`); a failed ``error`` check fails the run."""
    run = Run(job, run_id or new_run_id(), parameters, datetime.now(timezone.utc))
    with writer_lock(spark, lakehouse.root, job, run.run_id), live_progress(spark, job, run._last):
        with _tagged(spark, lakehouse, run, monitoring) as tagged:
            yield tagged
    run.stage("done: read %s, wrote %s", run.rows_read, run.rows_written)


@contextmanager
def _tagged(spark: SparkSession, lakehouse: Lakehouse, run: Run,
            monitoring: MonitoringSettings | None) -> Iterator[Run]:
    """Tag the session's Delta commits with ``run``; record it as succeeded, failed or skipped."""
    outer = current_tag(spark)
    set_current(spark, RunTag(run.job, run.run_id))
    run.stage("started run %s", run.run_id)
    try:
        try:
            yield run
            if monitoring is not None and run.versions_written:
                results = check_written(spark, lakehouse, monitoring, run.job, run.run_id, list(run.versions_written))
                if results:
                    run.stage("data-quality checks: %d passed, %d failed", sum(r.passed for r in results),
                              sum(not r.passed for r in results))
        except BaseException as exc:
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            status = "skipped" if getattr(exc, "skip_run", False) else "failed"
            try:
                _append(spark, lakehouse, _row(run, status, error[:4000]))
            except Exception:  # the run record must never hide the job's own error
                log.exception("could not record the run in %s", Tables.JOB_RUNS)
            run.stage("%s: %s", status.upper(), error)
            raise
        # The commit point: if this append fails, the run's outputs stay unpublished.
        _append(spark, lakehouse, _row(run, "succeeded", None))
        for action in run._after_commit:
            try:
                action()
            except Exception:
                log.error("run %s of %s is committed (its tables are published), but a step after the commit "
                          "failed", run.run_id, run.job)
                raise
    finally:
        set_current(spark, outer)


def _append(spark: SparkSession, lakehouse: Lakehouse, row: tuple) -> None:
    lakehouse.append(spark.createDataFrame([row], JOB_RUNS_SCHEMA), Tables.JOB_RUNS)


def last_success(lake: Lakehouse, job: str):
    """The last successful run of ``job`` (``versions_read``, ``parameters``), or None."""
    if not lake.exists(Tables.JOB_RUNS):
        return None
    from pyspark.sql import functions as F

    return (lake.read(Tables.JOB_RUNS).where((F.col("job") == job) & (F.col("status") == "succeeded"))
            .orderBy(F.col("ended_at").desc()).select("versions_read", "parameters").first())


def same_parameters(row, run: Run) -> bool:
    return row is not None and row["parameters"] == json.dumps(run.parameters, sort_keys=True, default=str)


def _versions(row) -> dict[str, int] | None:
    return None if row is None or row["versions_read"] is None else dict(row["versions_read"])


def unchanged(row, run: Run) -> bool:
    """True when ``row`` (a ``last_success``) read the same table versions with the same
    parameters as ``run``: its outputs are already what this run would write."""
    versions = _versions(row)
    return versions is not None and same_parameters(row, run) and versions == run.versions_read


def same_version(row, run: Run, table: str) -> bool:
    """True when ``row`` (a ``last_success``) read the same version of ``table`` as ``run``."""
    versions = _versions(row)
    return versions is not None and versions.get(table) == run.versions_read.get(table)


def unchanged_since_last_run(lake: Lakehouse, run: Run) -> bool:
    """``unchanged`` against the last successful run of this job: the run can be skipped."""
    return unchanged(last_success(lake, run.job), run)
