"""The job context: session, lakehouse, run record and settings in one object, and the one writer.

A job opens a context (:func:`job_context`), reads its inputs through it (each read recorded in
the run), calls one function of its area, and hands the :class:`Outputs` it returns to
:meth:`JobContext.publish`. Every write goes through the lakehouse's writer, which tags it with
the run, so the outputs become visible together when the run is recorded as succeeded
(:mod:`memberlake.io.commits`); publish also counts the rows and records the versions.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterator

from pyspark.sql import DataFrame, SparkSession

import memberlake
from memberlake.contract import LEGACY_SNAPSHOT_COLUMNS, SNAPSHOT
from memberlake.inputs import person_graph_or_empty, read_optional, read_silver
from memberlake.io.delta import Lakehouse
from memberlake.ops.parallel import run_each
from memberlake.ops.runs import Run, last_success, recorded_run, same_version, unchanged
from memberlake.settings import Settings

if TYPE_CHECKING:
    from memberlake.privacy.pseudonymise import Pseudonymiser

log = logging.getLogger(__name__)
_UNREAD = object()


def snapshot_predicate(as_of: date) -> str:
    """The replaceWhere predicate of one dated snapshot slice."""
    return f"{SNAPSHOT} = DATE'{as_of.isoformat()}'"


@dataclass
class Outputs:
    """What an area computed in one run, by how each table is written.

    ``slices`` replace the ``as_of`` slice of a snapshot table (other dates stay), ``replaced``
    the slice its predicate names, ``whole``
    overwrite their table, ``appended`` are added to theirs. ``add_columns`` names tables whose
    schema may gain columns (old rows read them as null).
    """

    as_of: date | None = None
    slices: dict[str, DataFrame] = field(default_factory=dict)
    whole: dict[str, DataFrame] = field(default_factory=dict)
    appended: dict[str, DataFrame] = field(default_factory=dict)
    # table -> (rows, replaceWhere predicate): a slice named by another key (e.g. one campaign).
    replaced: dict[str, tuple[DataFrame, str]] = field(default_factory=dict)
    add_columns: frozenset[str] = frozenset()
    counts: dict[str, Any] = field(default_factory=dict)   # figures for the progress line and MLflow


@dataclass
class JobContext:
    """What a running job holds: helpers take this instead of (spark, lake, run, settings, ...)."""

    spark: SparkSession
    settings: Settings
    lake: Lakehouse
    run: Run
    _last: Any = field(default=_UNREAD, repr=False)   # last_success(), once read

    @property
    def job(self) -> str:
        return self.run.job

    def stage(self, message: str, *args: Any) -> None:
        self.run.stage(message, *args)

    # -- reads, each recorded in the run ---------------------------------------------------------
    def table(self, name: str) -> DataFrame | None:
        """``name`` (its version recorded), or None when it does not exist yet."""
        return read_optional(self.lake, self.run, name)

    def silver(self, entity: str, required: bool = False,
               pseudonymiser: "Pseudonymiser | None" = None) -> DataFrame | None:
        return read_silver(self.lake, self.run, entity, required, pseudonymiser)

    def graph(self) -> DataFrame:
        """The identity graph, or an empty one before identity ran."""
        return person_graph_or_empty(self.lake, self.run)

    def exists(self, name: str) -> bool:
        return self.lake.exists(name)

    def last_success(self):
        """This job's last successful ``job_runs`` row (``versions_read``, ``parameters``), or None:
        read once per run (this run's own row is written when it ends)."""
        if self._last is _UNREAD:
            self._last = last_success(self.lake, self.job)
        return self._last

    def as_of(self, given: date | None, derive: Callable[[], date], source: str) -> date:
        """The run's as-of date, recorded in its parameters (``as_of``, ``as_of_from``): ``given``,
        else ``derive()`` over the table ``source`` (read before this call). When the last successful
        run derived its date from the same version of ``source``, that date is taken without
        deriving again: the derivation reads the whole table, and on a run with nothing to do it
        was the only read before the "unchanged" check (value, basket, forecast, models, score, uplift)."""
        if given is not None:
            self.run.parameters.update({"as_of": given.isoformat(), "as_of_from": "argument"})
            return given
        last = self.last_success()
        previous = json.loads(last["parameters"] or "{}") if last is not None else {}
        read = self.run.versions_read.get(source) is not None
        if read and previous.get("as_of_from") == source and previous.get("as_of") and same_version(last, self.run, source):
            found = date.fromisoformat(previous["as_of"])
            log.info("%s: as-of date %s, as the last run derived it from the same version of %s", self.job, found, source)
        else:
            found = derive()
        self.run.parameters.update({"as_of": found.isoformat(), "as_of_from": source})
        return found

    def unchanged(self, outputs: tuple[str, ...] | list[str]) -> bool:
        """True (and said) when the inputs and parameters equal the last successful run's and its
        ``outputs`` exist: the run has nothing to do."""
        if unchanged(self.last_success(), self.run) and all(self.exists(t) for t in outputs):
            self.stage("inputs and parameters unchanged since the last %s run: nothing to do", self.job)
            return True
        return False

    # -- writes, through the one writer ------------------------------------------------------------
    def _record(self, name: str, rows: int) -> int:
        self.run.record_write(name, rows, self.lake.version(name))
        return rows

    def overwrite(self, name: str, df: DataFrame, partition_by: list[str] | None = None) -> int:
        self.lake.overwrite(df, name, partition_by)
        return self._record(name, self.lake.read(name).count())   # from the Delta log

    def replace_slice(self, name: str, df: DataFrame, predicate: str, add_columns: bool = False) -> int:
        """Replace the rows of ``name`` matching ``predicate`` with ``df``; the slice's rows are
        counted from the table (counting ``df`` would run its plan again)."""
        self.lake.replace_where(df, name, predicate, add_columns=add_columns)
        return self._record(name, self.lake.read(name).where(predicate).count())

    def append(self, name: str, df: DataFrame) -> int:
        self.lake.append(df, name)
        return self._record(name, df.count())

    def publish(self, outputs: Outputs) -> dict[str, int]:
        """Write every table of ``outputs``; returns the rows written per table."""
        if outputs.slices and outputs.as_of is None:
            raise ValueError("Outputs.slices need an as_of date")

        def write_slice(name: str, df: DataFrame) -> int:
            self.migrate_snapshot_column(name)
            return self.replace_slice(name, df, snapshot_predicate(outputs.as_of),
                                      add_columns=name in outputs.add_columns)

        writes: list[tuple[str, Callable[[], int]]] = [
            *[(name, partial(write_slice, name, df)) for name, df in outputs.slices.items()],
            *[(name, partial(self.replace_slice, name, df, predicate, add_columns=name in outputs.add_columns))
              for name, (df, predicate) in outputs.replaced.items()],
            *[(name, partial(self.overwrite, name, df)) for name, df in outputs.whole.items()],
            *[(name, partial(self.append, name, df)) for name, df in outputs.appended.items()],
        ]
        # Tables are independent writes: they run side by side (spark.concurrent_jobs).
        rows = run_each(self.spark, writes, lambda write: write[1](), self.settings.spark.concurrent_jobs)
        return {name: n for (name, _), n in zip(writes, rows, strict=True)}

    def migrate_snapshot_column(self, name: str) -> None:
        """Rename a table's earlier snapshot column (``run_date``, ``to_date``, ``holdout_end``) to
        ``as_of_date`` in one overwrite, so its old slices stay readable under the one name."""
        if not self.exists(name):
            return
        df = self.lake.read(name)
        old = next((c for c in LEGACY_SNAPSHOT_COLUMNS.get(name, ()) if c in df.columns), None)
        if old is None or SNAPSHOT in df.columns:
            return
        log.warning("%s: renaming its snapshot column %s to %s (one-time migration)", name, old, SNAPSHOT)
        self.lake.overwrite(df.withColumnRenamed(old, SNAPSHOT).localCheckpoint(), name)


@contextmanager
def job_context(spark: SparkSession, settings: Settings, job: str,
                parameters: dict[str, Any] | None = None) -> Iterator[JobContext]:
    """Open a recorded run of ``job`` (writer lock, run tag, data-quality checks, ``job_runs``).

    The package's version is one of the run's parameters, so a run after an upgrade never takes
    the last run's outputs as its own ("nothing to do"): new code recomputes them once."""
    lake = Lakehouse.from_settings(settings, spark)
    recorded = {"memberlake_version": memberlake.__version__, **(parameters or {})}
    with recorded_run(spark, lake, job, recorded, monitoring=settings.monitoring) as run:
        yield JobContext(spark, settings, lake, run)
