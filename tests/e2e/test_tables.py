"""Every table a pipeline run writes matches its declaration (memberlake.tables): the first three
jobs' tables in the default suite, the whole pipeline's with ``-m extended``."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from memberlake.contract import SNAPSHOT, Tables
from memberlake.io.delta import Lakehouse
from memberlake.tables import TABLES, split_columns


def _columns(df) -> str:
    return ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in df.schema.fields)


def _problems(lake: Lakehouse) -> list[str]:
    """How each table in ``lake`` departs from its declaration: schema, snapshot column, unique keys."""
    written = set(lake.table_names())
    problems = [f"{name}: not declared" for name in sorted(written - set(TABLES))]
    for name in sorted(written & set(TABLES)):
        table, df = TABLES[name], lake.read(name)
        if _columns(df) != table.columns:
            problems.append(f"{name}: written {_columns(df)!r}, declared {table.columns!r}")
        if table.snapshot is not None and (table.snapshot != SNAPSHOT or SNAPSHOT not in df.columns):
            problems.append(f"{name}: snapshot column {table.snapshot} is not {SNAPSHOT} or absent")
        if table.snapshot and table.keys and SNAPSHOT not in table.keys:
            problems.append(f"{name}: keys of a snapshot table must include {SNAPSHOT}")
        if table.keys:
            keys = list(table.keys)
            dupes = df.groupBy(*keys).count().where(F.col("count") > 1).limit(1).collect()
            if dupes:
                problems.append(f"{name}: key {keys} repeats, e.g. {dupes[0]}")
    return problems


def test_ingest_clean_and_identity_tables_are_declared_with_their_schema_and_keys(spark, landing_lake):
    _, lakehouse = landing_lake
    lake = Lakehouse(str(lakehouse))
    expected = {Tables.bronze("members"), Tables.silver("orders"), Tables.QUARANTINE, "identity_graph", "person"}
    assert expected <= set(lake.table_names())
    assert _problems(lake) == []


@pytest.mark.extended
def test_every_written_table_is_declared_with_its_schema_keys_and_snapshot(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = Lakehouse(str(lakehouse))
    assert len(lake.table_names()) > 40
    assert _problems(lake) == []


def test_split_columns_keeps_nested_types_whole():
    assert split_columns("a int, b map<string,bigint>, c array<struct<x:int,y:string>>") == [
        "a int", "b map<string,bigint>", "c array<struct<x:int,y:string>>"]
