"""Data-quality checks and alerts: evaluated on the tables a job wrote, before they are published.

``monitoring.checks`` (conf/base.yml) lists checks per table: completeness of a column, validity
of a SQL rule, uniqueness of a key, row-count change against the last check, freshness of the
newest value. When a job has written a table, its checks run on what the job wrote, just before
the run is recorded as succeeded (the commit point): every result is appended to ``dq_alerts``
(value, limit, passed, severity), every failure to ``alerts`` and, when configured, POSTed as
JSON to ``monitoring.webhook_url``. A failed ``error`` check fails the job, naming the check, so
nothing it wrote becomes visible. Both tables are written outside the run's commit tag: an
alert stays readable when its job fails.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import Tables
from memberlake.errors import InputError
from memberlake.io.commits import current_tag, set_current
from memberlake.io.delta import Lakehouse
from memberlake.settings import CheckRule, MonitoringSettings

log = logging.getLogger(__name__)

DQ_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("job", T.StringType()),
    T.StructField("table", T.StringType()),
    T.StructField("check", T.StringType()),
    T.StructField("column", T.StringType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("limit", T.DoubleType()),
    T.StructField("passed", T.BooleanType()),
    T.StructField("severity", T.StringType()),
    T.StructField("message", T.StringType()),
    T.StructField("checked_at", T.TimestampType()),
])
ALERT_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("job", T.StringType()),
    T.StructField("source", T.StringType()),      # dq | model
    T.StructField("subject", T.StringType()),     # the table (dq) or the model (model monitoring)
    T.StructField("severity", T.StringType()),
    T.StructField("message", T.StringType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("limit", T.DoubleType()),
    T.StructField("raised_at", T.TimestampType()),
])


class DataQualityError(InputError):
    """A check of severity ``error`` failed: the job's outputs are not published."""


@dataclass(frozen=True)
class Result:
    rule: CheckRule
    value: float | None
    limit: float
    passed: bool
    message: str


def _columns(rule: CheckRule) -> list[str]:
    return [c.strip() for c in (rule.column or "").split(",") if c.strip()]


def _measure(rule: CheckRule, now: datetime) -> Column:
    """The aggregate a check compares with its limit (one row per table)."""
    rows = F.count(F.lit(1))
    if rule.check == "completeness":
        return F.try_divide(F.count(F.col(rule.column)), rows)        # null on an empty table
    if rule.check == "validity":
        return F.try_divide(F.sum(F.coalesce(F.expr(rule.rule), F.lit(False)).cast("long")), rows)
    if rule.check == "uniqueness":
        return F.try_divide(F.count_distinct(F.struct(*_columns(rule))), rows)
    if rule.check == "freshness":
        newest = F.max(F.col(rule.column).cast("timestamp"))
        return (F.lit(now).cast("timestamp").cast("double") - newest.cast("double")) / 86400.0
    return rows.cast("double")  # row_count_change: the count, compared below


def evaluate(table: DataFrame, rules: list[CheckRule], previous_rows: float | None, now: datetime) -> list[Result]:
    """The results of ``rules`` (all on one table) in one aggregation. ``previous_rows`` is the
    row count the last check recorded (row_count_change)."""
    if not rules:
        return []
    row = table.agg(*[_measure(r, now).cast("double").alias(f"m{i}") for i, r in enumerate(rules)]).first()
    out = []
    for i, rule in enumerate(rules):
        value = row[f"m{i}"]
        what = f"{rule.table}: {rule.check}" + (f" of {rule.column}" if rule.column else "") + (
            f" ({rule.rule})" if rule.rule else "")
        if rule.check == "row_count_change":
            if not previous_rows:
                out.append(Result(rule, value, rule.max_change, True, f"{what}: {value:.0f} rows, no earlier count"))
                continue
            change = abs((value or 0.0) / previous_rows - 1.0)
            out.append(Result(rule, value, rule.max_change, change <= rule.max_change,
                              f"{what}: {previous_rows:.0f} -> {value:.0f} rows ({change:+.1%} change, limit "
                              f"{rule.max_change:.0%})"))
        elif rule.check == "freshness":
            ok = value is not None and value <= rule.max_age_days
            out.append(Result(rule, value, rule.max_age_days, ok,
                              f"{what}: newest is {'no value' if value is None else f'{value:.1f} days old'} "
                              f"(limit {rule.max_age_days} days)"))
        else:
            share = 1.0 if value is None else value   # an empty table breaks no share rule
            out.append(Result(rule, share, rule.min, share >= rule.min - 1e-12,
                              f"{what}: {share:.4f} (at least {rule.min})"))
    return out


def _last_row_counts(lake: Lakehouse) -> dict[str, float]:
    if not lake.exists(Tables.DQ_ALERTS):
        return {}
    latest = (lake.read(Tables.DQ_ALERTS).where("check = 'row_count_change' AND value IS NOT NULL")
              .groupBy("table").agg(F.max_by("value", "checked_at").alias("rows")).collect())
    return {r.table: r.rows for r in latest}


def post(url: str, alerts: list[dict], timeout_s: float) -> None:
    """POST the alerts as JSON; a failure is logged, never raised (an alert must not fail a job)."""
    body = json.dumps({"source": "memberlake", "alerts": alerts}, default=str).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:   # noqa: S310 - configured URL
            response.read()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


def raise_alerts(spark: SparkSession, lake: Lakehouse, cfg: MonitoringSettings, alerts: list[tuple]) -> None:
    """Append alert rows (ALERT_SCHEMA tuples) to ``alerts``, untagged, and POST them."""
    if not alerts:
        return
    _untagged_append(spark, lake, spark.createDataFrame(alerts, ALERT_SCHEMA), Tables.ALERTS)
    for a in alerts:
        log.warning("ALERT %s %s: %s", a[4], a[3], a[5])
    if cfg.webhook_url:
        post(cfg.webhook_url, [dict(zip(ALERT_SCHEMA.fieldNames(), a, strict=True)) for a in alerts],
             cfg.webhook_timeout_s)


def _untagged_append(spark: SparkSession, lake: Lakehouse, df: DataFrame, table: str) -> None:
    """Append outside the run's commit tag: published at once, whatever becomes of the run."""
    tag = current_tag(spark)
    set_current(spark, None)
    try:
        lake.append(df, table)
    finally:
        set_current(spark, tag)


def check_written(spark: SparkSession, lake: Lakehouse, cfg: MonitoringSettings, job: str, run_id: str,
                  written: list[str]) -> list[Result]:
    """Run the checks of the tables a job wrote (as the job sees them) and record them; raises
    :class:`DataQualityError` when an ``error`` check failed."""
    rules = [r for r in cfg.checks if r.table in written]
    if not rules:
        return []
    now = datetime.now(timezone.utc)
    previous = _last_row_counts(lake) if any(r.check == "row_count_change" for r in rules) else {}
    results: list[Result] = []
    for table in dict.fromkeys(r.table for r in rules):
        mine = [r for r in rules if r.table == table]
        results += evaluate(lake.read(table), mine, previous.get(table), now)
    rows = [(run_id, job, r.rule.table, r.rule.check, r.rule.column or r.rule.rule, r.value, r.limit, r.passed,
             r.rule.severity, r.message, now) for r in results]
    _untagged_append(spark, lake, spark.createDataFrame(rows, DQ_SCHEMA), Tables.DQ_ALERTS)
    failed = [r for r in results if not r.passed]
    raise_alerts(spark, lake, cfg, [(run_id, job, "dq", r.rule.table, r.rule.severity, r.message, r.value, r.limit,
                                     now) for r in failed])
    errors = [r for r in failed if r.rule.severity == "error"]
    if errors:
        raise DataQualityError(f"{job}: data-quality check failed, outputs not published: {errors[0].message}"
                               + (f" (and {len(errors) - 1} more: see dq_alerts)" if len(errors) > 1 else ""))
    return results
