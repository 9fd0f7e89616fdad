"""Delta table helpers: where a logical table lives, read, write, replaceWhere and MERGE.

Tables are addressed by logical name; :class:`Lakehouse` maps that to a path under
``storage.lakehouse`` or to ``catalog.schema.table``. These and the landing readers are the only
functions that touch storage.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

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


@dataclass(frozen=True)
class Lakehouse:
    """Resolves logical table names to a Delta path or a catalog table name."""

    root: str | None
    catalog: str | None = None
    schema: str | None = None
    renames: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Lakehouse":
        storage = settings.storage
        if storage.catalog_mode:
            return cls(None, storage.catalog, storage.db_schema, tuple(storage.tables.items()))
        if not storage.lakehouse:
            raise SettingsError(
                "storage.lakehouse is not set: pass --lakehouse DIR, or set storage.catalog "
                "and storage.schema for catalog tables"
            )
        return cls(absolute(storage.lakehouse.rstrip("/")), renames=tuple(storage.tables.items()))

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

    # -- reading ---------------------------------------------------------------------------
    def exists(self, spark: SparkSession, name: str) -> bool:
        if self.catalog_mode:
            return spark.catalog.tableExists(self.location(name))
        return DeltaTable.isDeltaTable(spark, self.location(name))

    def read(self, spark: SparkSession, name: str, version: int | None = None) -> DataFrame:
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if self.catalog_mode:
            if version is not None:
                return spark.sql(f"SELECT * FROM {self.location(name)} VERSION AS OF {version}")
            return spark.table(self.location(name))
        return reader.load(self.location(name))

    def table_names(self, spark: SparkSession) -> list[str]:
        """Logical names of the Delta tables that exist (folders under the root, or the schema)."""
        if self.catalog_mode:
            return sorted(t.name for t in spark.catalog.listTables(f"{self.catalog}.{self.schema}"))
        root = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(self.root)
        fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(root):
            return []
        names = [s.getPath().getName() for s in fs.listStatus(root) if s.isDirectory()]
        return sorted(n for n in names if self.exists(spark, n))

    def delta_table(self, spark: SparkSession, name: str) -> DeltaTable:
        if self.catalog_mode:
            return DeltaTable.forName(spark, self.location(name))
        return DeltaTable.forPath(spark, self.location(name))

    def version(self, spark: SparkSession, name: str) -> int | None:
        if not self.exists(spark, name):
            return None
        row = self.delta_table(spark, name).history(1).select("version").first()
        return int(row["version"]) if row else None

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

    def append(self, df: DataFrame, name: str, partition_by: list[str] | None = None) -> None:
        self._save(self._writer(df, "append", partition_by), name)

    def overwrite(self, df: DataFrame, name: str, partition_by: list[str] | None = None) -> None:
        self._save(self._writer(df, "overwrite", partition_by).option("overwriteSchema", "true"), name)

    def replace_where(self, df: DataFrame, name: str, predicate: str,
                      partition_by: list[str] | None = None, add_columns: bool = False) -> None:
        """Atomically replace the rows matching ``predicate`` with ``df`` (re-runs of a range).

        ``add_columns`` lets new columns into the table (older slices read them as null); any
        other schema change still fails.
        """
        if not self.exists(df.sparkSession, name):
            self.append(df, name, partition_by)
            return
        writer = self._writer(df, "overwrite", partition_by).option("replaceWhere", predicate)
        if add_columns:
            writer = writer.option("mergeSchema", "true")
        self._save(writer, name)

    def merge(
        self,
        df: DataFrame,
        name: str,
        keys: list[str],
        update_condition: str | None = None,
        insert_only: bool = False,
        partition_by: list[str] | None = None,
    ) -> None:
        """Upsert ``df`` (one row per key, which the caller guarantees) into ``name``.

        ``update_condition`` refers to the target as ``t`` and the source as ``s``; rows whose
        condition is false are left as they are, so replaying an older batch changes nothing.
        """
        spark = df.sparkSession
        if not self.exists(spark, name):
            self.append(df, name, partition_by)
            return
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        merge = self.delta_table(spark, name).alias("t").merge(df.alias("s"), condition)
        if not insert_only:
            merge = merge.whenMatchedUpdateAll(condition=update_condition)
        merge.whenNotMatchedInsertAll().execute()

    def apply_changes(self, upserts: DataFrame, deletes: DataFrame, name: str, key: str,
                      target_filter: str | None = None) -> None:
        """Upsert ``upserts`` and delete the ``deletes`` keys (one column ``key``) in one commit.

        ``target_filter`` (SQL over the target as ``t``) must hold for every target row a change
        can match: Delta then reads and rewrites only the files whose statistics may satisfy it.
        """
        spark = upserts.sparkSession
        if not self.exists(spark, name):
            self.append(upserts, name)
            return
        columns = upserts.columns
        tombstones = deletes.select(
            key, *[F.lit(None).cast(upserts.schema[c].dataType).alias(c) for c in columns if c != key])
        source = (upserts.withColumn("_action", F.lit("upsert"))
                  .unionByName(tombstones.select(*columns).withColumn("_action", F.lit("delete"))))
        values = {f"`{c}`": f"s.`{c}`" for c in columns}
        condition = f"t.`{key}` = s.`{key}`" + (f" AND ({target_filter})" if target_filter else "")
        (self.delta_table(spark, name).alias("t").merge(source.alias("s"), condition)
         .whenMatchedDelete(condition="s._action = 'delete'")
         .whenMatchedUpdate(condition="s._action = 'upsert'", set=values)
         .whenNotMatchedInsert(condition="s._action = 'upsert'", values=values)
         .execute())

