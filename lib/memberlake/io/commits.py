"""Which Delta commit of a table is published: the run record is the commit point.

Delta commits one table at a time, so a job that writes seven tables and dies after the first
leaves one table ahead of the other six. memberlake makes a job's outputs visible together by
tagging every commit a job makes with the job's run (Delta's ``commitInfo.userMetadata``, set for
the whole session while the job runs) and by treating a commit as *published* only when its run
is recorded as ``succeeded`` in ``job_runs``. The ``job_runs`` append is one Delta commit: it is
the moment all of a run's outputs become visible at once.

- A reader sees, per table, the newest version whose commit is published (or untagged: written
  outside memberlake, or before tagging). Older versions are reached by time travel.
- A run sees its own commits.
- Before a run writes to a table whose newest commits belong to a run that never succeeded (it
  failed, or was killed), the writer restores the table to its published version (``RESTORE``),
  or empties it when no version was ever published, so the new run builds on the last good state.

See docs/operations.md ("All-or-nothing runs").
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

TAG_CONF = "spark.databricks.delta.commitInfo.userMetadata"
TAG_PREFIX = "memberlake-run"
FAIL_AFTER_ENV = "MEMBERLAKE_FAIL_AFTER"
FAIL_MODE_ENV = "MEMBERLAKE_FAIL_MODE"


class InjectedFault(RuntimeError):
    """Raised by the fault-injection hook right after a chosen write (tests only)."""


@dataclass(frozen=True)
class RunTag:
    job: str
    run_id: str

    def text(self) -> str:
        return f"{TAG_PREFIX} {self.job} {self.run_id}"

    @classmethod
    def parse(cls, text: str | None) -> "RunTag | None":
        parts = (text or "").split()
        if len(parts) == 3 and parts[0] == TAG_PREFIX:
            return cls(parts[1], parts[2])
        return None


def current_tag(spark: SparkSession) -> RunTag | None:
    """The run this session is executing, or None outside a job."""
    return RunTag.parse(spark.conf.get(TAG_CONF, None))


def set_current(spark: SparkSession, tag: RunTag | None) -> None:
    if tag is None:
        spark.conf.unset(TAG_CONF)
    else:
        spark.conf.set(TAG_CONF, tag.text())


class SucceededRuns:
    """The run ids recorded as succeeded, cached with the ``job_runs`` version they were read at.

    Succeeded runs are only ever added, so a cached "yes" stays true; a "no" is believed only
    while ``job_runs`` is still at the version the cache was loaded from.
    """

    def __init__(self, load: Callable[[], tuple[int | None, set[str]]],
                 log_version: Callable[[], int | None]) -> None:
        self._load = load
        self._log_version = log_version
        self._ids: set[str] | None = None
        self._at: int | None = None

    def __contains__(self, run_id: str) -> bool:
        if self._ids is not None and run_id in self._ids:
            return True
        if self._ids is None or self._log_version() != self._at:
            self._at, self._ids = self._load()
        return run_id in self._ids


def fault_point(spark: SparkSession, table: str) -> None:
    """Fail right after a write when ``MEMBERLAKE_FAIL_AFTER`` names ``job:table`` (or ``job:*``).

    ``MEMBERLAKE_FAIL_MODE=kill`` ends the process with SIGKILL (nothing is recorded, as with a
    lost driver); the default raises :class:`InjectedFault` (the run is recorded as failed).
    """
    wanted = os.environ.get(FAIL_AFTER_ENV)
    if not wanted:
        return
    tag = current_tag(spark)
    if tag is None:
        return
    points = {p.strip() for p in wanted.split(",") if p.strip()}
    if f"{tag.job}:{table}" not in points and f"{tag.job}:*" not in points:
        return
    log.error("fault injection: %s fails after writing %s", tag.job, table)
    if os.environ.get(FAIL_MODE_ENV) == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"injected fault: {tag.job} after writing {table}")
