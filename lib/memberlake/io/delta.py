"""Delta table helpers: where a logical table lives, read, write, replaceWhere and MERGE.

Tables are addressed by logical name; :class:`Lakehouse` maps that to a path under
``storage.lakehouse`` or to ``catalog.schema.table``. These and the landing readers are the only
functions that touch storage.

Reads see a table's *published* version and every write first rolls back what a run that never
succeeded left behind (see :mod:`memberlake.io.commits`): a job's outputs become visible together,
when its run is recorded as succeeded.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field, replace

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.io.commits import RunTag, SucceededRuns, current_tag, fault_point
from memberlake.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Properties every new memberlake table gets (set as session defaults by memberlake.spark).
DEFAULT_PROPERTIES = {
    "enableChangeDataFeed": "true",
}


def absolute(path: str) -> str:
    """A local relative path made absolute (Delta's builder wants one); URIs are kept."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", path) or os.path.isabs(path):
        return path
    return os.path.abspath(path)


def sql_in(column: str, values: list[str]) -> str:
    """``column IN ('a', 'b')`` with the values quoted and escaped, for replaceWhere predicates."""
    quoted = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in sorted(set(values)))
    return f"{column} IN ({quoted})"


def _row_json(columns: list[str], alias: str = "") -> str:
    """SQL for a row as JSON text (a row identity for tables without a key; maps and arrays included)."""
    prefix = f"{alias}." if alias else ""
    fields = ", ".join("'" + c.replace("'", "\\'") + f"', {prefix}`{c}`" for c in columns)
    return f"to_json(named_struct({fields}))"


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(location: str) -> threading.RLock:
    """The lock of one table's writes in this process.

    A job may work on several entities at once (threads); their writes to one shared table (the
    quarantine) take turns, because two Delta transactions that both read an unpartitioned table
    conflict. Writes to different tables still run together.
    """
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(location, threading.RLock())


def _serialised(method):
    """Decorate a :class:`Lakehouse` write: it holds its table's write lock (:func:`_write_lock`)."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def locked(self: "Lakehouse", *args, **kwargs):
        name = signature.bind(self, *args, **kwargs).arguments["name"]
        with _write_lock(self.location(name)):
            return method(self, *args, **kwargs)

    return locked


class UnpublishedTable(LookupError):
    """The table exists only as the output of a run that did not succeed."""


@dataclass(frozen=True)
class Lakehouse:
    """Resolves logical table names to a Delta path or a catalog table name."""

    root: str | None
    catalog: str | None = None
    schema: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    session: SparkSession | None = field(default=None, compare=False, hash=False, repr=False)
    _succeeded: SucceededRuns | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self._succeeded is None:
            object.__setattr__(self, "_succeeded", SucceededRuns(self._load_succeeded, self._run_log_version))

    def _bound(self) -> SparkSession | None:
        return self.session or SparkSession.getActiveSession()

    @property
    def spark(self) -> SparkSession:
        """The session the lakehouse reads and writes with (as a ``DeltaTable`` holds its own):
        the one it was made with, else the active one."""
        spark = self._bound()
        if spark is None:
            raise RuntimeError("Lakehouse: no Spark session (make one first, or pass session=)")
        return spark

    def with_session(self, spark: SparkSession) -> "Lakehouse":
        """This lakehouse bound to ``spark``."""
        return replace(self, session=spark, _succeeded=None)

    @classmethod
    def from_settings(cls, settings: Settings, spark: SparkSession | None = None) -> "Lakehouse":
        storage = settings.storage
        if storage.catalog_mode:
            return cls(None, storage.catalog, storage.db_schema, tuple(storage.tables.items()), session=spark)
        if not storage.lakehouse:
            raise SettingsError(
                "storage.lakehouse is not set: pass --lakehouse DIR, or set storage.catalog "
                "and storage.schema for catalog tables"
            )
        return cls(absolute(storage.lakehouse.rstrip("/")), renames=tuple(storage.tables.items()), session=spark)

    @property
    def catalog_mode(self) -> bool:
        return self.root is None

    def physical(self, name: str) -> str:
        return dict(self.renames).get(name, name)

    def location(self, name: str) -> str:
        """A path (path mode) or catalog.schema.table (catalog mode)."""
        physical = self.physical(name)
        if self.catalog_mode:
            return f"{self.catalog}.{self.schema}.{physical}"
        return f"{self.root}/{physical}"

    def sql_name(self, name: str) -> str:
        """The table as SQL names it: catalog.schema.table, or delta.`path`."""
        return self.location(name) if self.catalog_mode else f"delta.`{self.location(name)}`"

    # -- publication -----------------------------------------------------------------------
    def _load_succeeded(self) -> tuple[int | None, set[str]]:
        """(version of ``job_runs``, the run ids it records as succeeded)."""
        head = self._head(Tables.JOB_RUNS) if self._bound() is not None else None
        if head is None:
            return None, set()
        runs = self._read_at(Tables.JOB_RUNS, head[0]).where(F.col("status") == "succeeded").select("run_id")
        return head[0], {r.run_id for r in runs.collect()}

    def _run_log_version(self) -> int | None:
        head = self._head(Tables.JOB_RUNS) if self._bound() is not None else None
        return head[0] if head else None

    def _is_published(self, user_metadata: str | None) -> bool:
        tag = RunTag.parse(user_metadata)
        if tag is None:
            return True
        current = current_tag(self.spark)
        if current is not None and current.run_id == tag.run_id:
            return True
        return tag.run_id in self._succeeded

    def _head(self, name: str) -> tuple[int, str | None] | None:
        """(newest version, its commit's userMetadata), or None when ``name`` is no Delta table.

        In path mode read from the newest commit file of ``_delta_log`` (no Spark job); in
        catalog mode from ``DESCRIBE HISTORY``.
        """
        if self.catalog_mode:
            if not self.spark.catalog.tableExists(self.location(name)):
                return None
            head = self._history(name, 1)
            return head[0] if head else None
        jvm = self.spark.sparkContext._jvm
        log_dir = jvm.org.apache.hadoop.fs.Path(f"{self.location(name)}/_delta_log")
        fs = log_dir.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(log_dir):
            return None
        commits = [s.getPath().getName() for s in fs.listStatus(log_dir)]
        versions = [int(n[:-5]) for n in commits if n.endswith(".json") and n[:-5].isdigit()]
        if not versions:
            return None
        newest = max(versions)
        stream = fs.open(jvm.org.apache.hadoop.fs.Path(log_dir, f"{newest:020d}.json"))
        try:
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            line = reader.readLine()
            while line is not None:
                if line.startswith('{"commitInfo"'):
                    return newest, json.loads(line)["commitInfo"].get("userMetadata")
                line = reader.readLine()
        finally:
            stream.close()
        return newest, None

    def _physical_exists(self, name: str) -> bool:
        return self._head(name) is not None

    def _history(self, name: str, limit: int | None = None) -> list[tuple[int, str | None]]:
        """(version, userMetadata), newest first."""
        table = self.delta_table(name)
        history = table.history(limit) if limit else table.history()
        return [(int(r["version"]), r["userMetadata"]) for r in history.select("version", "userMetadata").collect()]

    def newest_version(self, name: str) -> int | None:
        """The newest commit, published or not (what a plain Delta reader sees)."""
        head = self._head(name)
        return head[0] if head else None

    def published_version(self, name: str) -> int | None:
        """The newest version written by a succeeded run, by this session's run, or untagged
        (``job_runs``, the commit log itself: always its newest version)."""
        head = self._head(name)
        if head is None:
            return None
        if name == Tables.JOB_RUNS or self._is_published(head[1]):
            return head[0]
        return next((v for v, meta in self._history(name) if self._is_published(meta)), None)

    def _prepare_write(self, name: str, replaces_all: bool = False) -> bool:
        """Roll ``name`` back to its published version when a failed run wrote after it.

        Returns whether the table exists (after the roll-back). An overwrite replaces every row,
        so nothing is restored before one.
        """
        head = self._head(name)
        if head is None:
            return False
        if name == Tables.JOB_RUNS or self._is_published(head[1]):
            return True
        target = self.published_version(name)
        tag = RunTag.parse(head[1])
        log.warning("%s: version %d was written by %s run %s, which did not succeed; %s", name, head[0],
                    tag.job if tag else "?", tag.run_id if tag else "?",
                    "it is replaced" if replaces_all else
                    (f"restoring version {target}" if target is not None else "no version was ever published: "
                     "emptying it"))
        if replaces_all:
            return True
        table = self.delta_table(name)
        if target is None:
            table.delete()
        else:
            table.restoreToVersion(target)
        return True

    def _settle(self, name: str) -> None:
        """Claim a failed run's head commit that this run's write left in place.

        A write that changes nothing (an empty overwrite of an empty table, an empty append)
        commits nothing in Delta, so the head can still be a failed run's commit after the write,
        and readers would skip past it once this run succeeds, to an older state. The head then
        already holds what this run wrote (the write was a no-op on it); a metadata-only commit
        tagged with this run makes it this run's, published with it.
        """
        head = self._head(name)
        current = current_tag(self.spark)
        if head is None or current is None or name == Tables.JOB_RUNS or self._is_published(head[1]):
            return
        log.info("%s: the write changed nothing; claiming version %d for run %s", name, head[0], current.run_id)
        self.spark.sql(f"ALTER TABLE {self.sql_name(name)} SET TBLPROPERTIES "
                       f"('memberlake.claimed_by' = '{current.run_id}')")

    def for_update(self, name: str) -> DeltaTable:
        """The Delta table to change in place (DELETE, OPTIMIZE), rolled back to its published
        state first."""
        self._prepare_write(name)
        return self.delta_table(name)

    # -- reading ---------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        """True when a published version of ``name`` exists."""
        return self.published_version(name) is not None

    def _read_at(self, name: str, version: int | None) -> DataFrame:
        if self.catalog_mode:
            if version is not None:
                return self.spark.sql(f"SELECT * FROM {self.location(name)} VERSION AS OF {version}")
            return self.spark.table(self.location(name))
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.location(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """``name`` at ``version``, by default at its published version (pinned)."""
        if version is None:
            version = self.published_version(name)
            if version is None:
                if self._physical_exists(name):
                    raise UnpublishedTable(f"{name}: no run that wrote it has succeeded yet")
                return self._read_at(name, None)  # Delta's own "not a Delta table" error
        return self._read_at(name, version)

    def table_names(self, published_only: bool = True) -> list[str]:
        """Logical names of the Delta tables that exist (folders under the root, or the schema);
        with ``published_only`` false also those no succeeded run has written yet."""
        exists = self.exists if published_only else self._physical_exists
        if self.catalog_mode:
            names = [t.name for t in self.spark.catalog.listTables(f"{self.catalog}.{self.schema}")]
            return sorted(n for n in names if exists(n))
        root = self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path(self.root)
        fs = root.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(root):
            return []
        names = [s.getPath().getName() for s in fs.listStatus(root) if s.isDirectory()]
        return sorted(n for n in names if exists(n))

    def delta_table(self, name: str) -> DeltaTable:
        if self.catalog_mode:
            return DeltaTable.forName(self.spark, self.location(name))
        return DeltaTable.forPath(self.spark, self.location(name))

    def version(self, name: str) -> int | None:
        """The published version (what :meth:`read` reads), or None."""
        return self.published_version(name)

    # -- writing ---------------------------------------------------------------------------
    def _writer(self, df: DataFrame, mode: str, partition_by: list[str] | None):
        writer = df.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        return writer

    def _save(self, writer, name: str) -> None:
        if self.catalog_mode:
            writer.saveAsTable(self.location(name))
        else:
            writer.save(self.location(name))

    @_serialised
    def append(self, df: DataFrame, name: str, partition_by: list[str] | None = None) -> None:
        self._prepare_write(name)
        self._save(self._writer(df, "append", partition_by), name)
        self._settle(name)
        fault_point(df.sparkSession, name)

    @_serialised
    def overwrite(self, df: DataFrame, name: str, partition_by: list[str] | None = None) -> None:
        self._prepare_write(name, replaces_all=True)
        self._save(self._writer(df, "overwrite", partition_by).option("overwriteSchema", "true"), name)
        self._settle(name)
        fault_point(df.sparkSession, name)

    @_serialised
    def replace_where(self, df: DataFrame, name: str, predicate: str,
                      partition_by: list[str] | None = None, add_columns: bool = False) -> None:
        """Atomically replace the rows matching ``predicate`` with ``df`` (re-runs of a range).

        ``add_columns`` lets new columns into the table (older slices read them as null); any
        other schema change still fails.
        """
        if not self._prepare_write(name):
            self.append(df, name, partition_by)
            return
        writer = self._writer(df, "overwrite", partition_by).option("replaceWhere", predicate)
        if add_columns:
            writer = writer.option("mergeSchema", "true")
        self._save(writer, name)
        self._settle(name)
        fault_point(df.sparkSession, name)

    @_serialised
    def merge(
        self,
        df: DataFrame,
        name: str,
        keys: list[str],
        update_condition: str | None = None,
        insert_only: bool = False,
        partition_by: list[str] | None = None,
        add_columns: bool = False,
    ) -> None:
        """Upsert ``df`` (one row per key, which the caller guarantees) into ``name``.

        ``update_condition`` refers to the target as ``t`` and the source as ``s``; rows whose
        condition is false are left as they are, so replaying an older batch changes nothing.
        ``add_columns`` lets new source columns into the table (schema evolution; older rows
        read them as null).
        """
        spark = df.sparkSession
        if not self._prepare_write(name):
            self.append(df, name, partition_by)
            return
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        merge = self.delta_table(name).alias("t").merge(df.alias("s"), condition)
        if add_columns:
            merge = merge.withSchemaEvolution()
        if not insert_only:
            merge = merge.whenMatchedUpdateAll(condition=update_condition)
        merge.whenNotMatchedInsertAll().execute()
        self._settle(name)
        fault_point(spark, name)

    @_serialised
    def delete(self, name: str, condition) -> None:
        """Delete the rows matching ``condition`` (a Column or SQL text), in one commit.

        Done as a MERGE of the matching rows (by their JSON) rather than a ``DELETE WHERE``:
        Delta keeps a DELETE's predicate, literals and all, in the table's history
        (``operationParameters.predicate``) for ``delta.logRetentionDuration``, and the values a
        forget request deletes by are the very identifiers it must erase. The MERGE's recorded
        predicate names columns only.
        """
        table = self.for_update(name)
        current = table.toDF()
        doomed = current.where(condition).select(F.expr(_row_json(current.columns)).alias("_row")).distinct()
        table.alias("t").merge(doomed.alias("s"), f"{_row_json(current.columns, 't')} = s._row").whenMatchedDelete().execute()
        self._settle(name)
        fault_point(self.spark, name)

    @_serialised
    def apply_changes(self, upserts: DataFrame, deletes: DataFrame, name: str, key: str | list[str],
                      target_filter: str | None = None) -> None:
        """Upsert ``upserts`` and delete the ``deletes`` keys (the ``key`` column or columns) in one
        commit.

        ``target_filter`` (SQL over the target as ``t``) must hold for every target row a change
        can match: Delta then reads and rewrites only the files whose statistics may satisfy it.
        """
        spark = upserts.sparkSession
        if not self._prepare_write(name):
            self.append(upserts, name)
            return
        keys = [key] if isinstance(key, str) else list(key)
        columns = upserts.columns
        tombstones = deletes.select(
            *keys, *[F.lit(None).cast(upserts.schema[c].dataType).alias(c) for c in columns if c not in keys])
        source = (upserts.withColumn("_action", F.lit("upsert"))
                  .unionByName(tombstones.select(*columns).withColumn("_action", F.lit("delete"))))
        values = {f"`{c}`": f"s.`{c}`" for c in columns}
        condition = (" AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
                     + (f" AND ({target_filter})" if target_filter else ""))
        (self.delta_table(name).alias("t").merge(source.alias("s"), condition)
         .whenMatchedDelete(condition="s._action = 'delete'")
         .whenMatchedUpdate(condition="s._action = 'upsert'", set=values)
         .whenNotMatchedInsert(condition="s._action = 'upsert'", values=values)
         .execute())
        self._settle(name)
        fault_point(spark, name)

