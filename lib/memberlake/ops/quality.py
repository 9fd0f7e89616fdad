"""Data-quality metrics appended to ``dq_metrics`` on every run, in long format.

One row per (table, metric, column): row counts in/out/quarantined, completeness (non-null
share) per column, validity (share of rows without a flag, and rows per flag), and key
uniqueness (distinct keys / rows: below 1 means the input repeated keys). Clean profiles the
accepted rows of the batches it processed, from its cache, so a run's metrics describe what
that run brought in; ``rows_total`` gives the table's size after the run.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import FLAGS

DQ_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("job", T.StringType()),
    T.StructField("table", T.StringType()),
    T.StructField("metric", T.StringType()),
    T.StructField("column", T.StringType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("measured_at", T.TimestampType()),
])

Metric = tuple[str, str, str | None, float]  # table, metric, column, value


def profile(df: DataFrame, table: str, keys: list[str], columns: list[str]) -> list[Metric]:
    """Completeness per column, key uniqueness and validity of one table (small result)."""
    aggs = [F.count(F.lit(1)).alias("rows")]
    aggs += [F.count(F.col(c)).alias(f"nn_{i}") for i, c in enumerate(columns)]
    if keys:
        aggs.append(F.count_distinct(F.struct(*keys)).alias("distinct_keys"))
    has_flags = FLAGS in df.columns
    if has_flags:
        aggs.append(F.sum(F.when(F.size(FLAGS) > 0, 1).otherwise(0)).alias("flagged"))
    row = df.agg(*aggs).first()
    rows = int(row["rows"])
    out: list[Metric] = [(table, "rows", None, float(rows))]
    for i, c in enumerate(columns):
        out.append((table, "completeness", c, row[f"nn_{i}"] / rows if rows else 1.0))
    if keys:
        out.append((table, "key_uniqueness", ",".join(keys), row["distinct_keys"] / rows if rows else 1.0))
    if has_flags:
        out.append((table, "validity", None, 1.0 - (row["flagged"] or 0) / rows if rows else 1.0))
        flag_counts = df.select(F.explode(FLAGS).alias("flag")).groupBy("flag").count().collect()
        out += [(table, "flagged_rows", r["flag"], float(r["count"])) for r in flag_counts]
    return out


def metrics_frame(spark: SparkSession, run_id: str, job: str, metrics: list[Metric],
                  measured_at: datetime) -> DataFrame:
    rows = [(run_id, job, t, m, c, float(v), measured_at) for t, m, c, v in metrics]
    return spark.createDataFrame(rows, DQ_SCHEMA)
