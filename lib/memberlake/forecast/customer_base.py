"""The customer base, week by week: repeat purchases, active members and repeat revenue expected
from the fitted BTYD model, and the same prediction made from the calibration fit checked
against what happened.

Per person with BTYD summary (frequency x, recency t_x, age T, in days) and the transaction
model's parameters, E(t) is the expected number of purchase days in (T, T + t]; week k's
expected purchases are E(7k) - E(7(k - 1)). Summed over persons that is the model's weekly
repeat-purchase forecast (Fader, Hardie & Lee's tracking plot). Expected repeat revenue is each
person's weekly purchases times their Gamma-Gamma expected spend. Active members in week k, the
expected number of persons buying at least once, is approximated per person by
1 - exp(-expected purchases in week k): exact for a Poisson count, slightly high for the
over-dispersed BTYD counts — the backtest shows by how much.

Intervals (``*_lower`` / ``*_upper``, central ``level``) add two variances per week and measure:

- the parameters' uncertainty, by the delta method: the week's sum evaluated at the fitted
  log-parameters moved by ±h along each axis gives its gradient g, and g' Σ g its variance, with Σ
  the fit's asymptotic covariance of the log-parameters (``clv_parameters.log_covariance``); and
- the persons' own randomness, summed over independent persons: a week's purchases of one person
  have variance w + w² ((r + x + 1) / ((r + x) p_alive) - 1) — the Poisson count around the
  expectation w, plus the spread of that expectation itself, the purchase rate λ | history being
  Gamma(r + x, ·) and the person alive with probability p_alive; active members are Bernoulli with
  p = 1 - exp(-w); revenue is the purchases times the person's expected spend (Gamma-Gamma's
  uncertainty is left out).

The sum of many independent persons is close to normal, so the bounds are the expectation ±z sd
(clipped at 0). Without a covariance (a fit on a boundary) only the persons' randomness is in them.

Persons with the same (x, t_x, T) share every expectation, so the sums run over the distinct rows
with counts, per partition (``mapInPandas``: each partition returns one row per parameter point
and week); only those (2k + 1) x weeks rows reach the driver.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.btyd import MODELS, TransactionModel

log = logging.getLogger(__name__)
MEASURES = ("expected_purchases", "expected_active", "expected_revenue")
# Step in the log-parameters of the central differences (the sums are smooth in them).
STEP = 1e-3
BOUNDS = [f"{m}_{side}" for m in MEASURES for side in ("lower", "upper")]
# What a partition sums per parameter point and week: the three measures, then their variances.
SUMMED = (*MEASURES, "var_purchases", "var_active", "var_revenue")
SUMS = ("point int, week int, persons bigint, " + ", ".join(f"{c} double" for c in SUMMED)
        + ", failed double")


def week_sums(spec: TransactionModel, values: list[float], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
              n: np.ndarray, spend: np.ndarray, spend2: np.ndarray, weeks: int) -> tuple[np.ndarray, float]:
    """((weeks, 6), failed): expected purchases, active members and revenue summed over the rows,
    then the persons' variances of the three (module docstring); and the persons whose P(alive) or
    expectations were not finite, who count as alive with no purchases rather than making every sum
    NaN (the caller reports how many). A row stands for ``n`` persons with the same (x, t_x, T);
    ``spend`` and ``spend2`` are the sums of their expected spend and of its square."""
    out = np.zeros((weeks, 6))
    r = values[0]
    raw_alive = spec.p_alive(x, tx, T, *values)
    failed = ~np.isfinite(raw_alive)
    alive = np.clip(np.nan_to_num(raw_alive, nan=1.0), 1e-12, 1.0)
    spread = (r + x + 1.0) / ((r + x) * alive) - 1.0
    before = np.zeros(len(x))
    for k in range(weeks):
        raw = spec.expected(7.0 * (k + 1), x, tx, T, *values)
        failed |= ~np.isfinite(raw)
        cumulative = np.where(np.isfinite(raw), raw, 0.0)
        week = np.clip(cumulative - before, 0.0, None)
        before = cumulative
        active = 1.0 - np.exp(-week)
        var = week + week ** 2 * spread
        out[k] = [(n * week).sum(), (n * active).sum(), (week * spend).sum(),
                  (n * var).sum(), (n * active * (1.0 - active)).sum(), (var * spend2).sum()]
    return out, float(n[failed].sum())


def parameter_points(values: list[float], with_gradient: bool) -> list[list[float]]:
    """The fitted parameters, then each moved by a factor exp(±STEP) (when a gradient is wanted)."""
    points = [list(values)]
    if with_gradient:
        for j in range(len(values)):
            for sign in (1.0, -1.0):
                moved = list(values)
                moved[j] = values[j] * float(np.exp(sign * STEP))
                points.append(moved)
    return points


def bounds(sums: np.ndarray, log_cov: np.ndarray | None, level: float) -> np.ndarray:
    """(weeks, 6) lower/upper of each measure (``BOUNDS`` order) from ``sums`` (points x weeks x 6,
    as ``week_sums`` per point of ``parameter_points``)."""
    mean, variance = sums[0, :, :3], sums[0, :, 3:].copy()
    if log_cov is not None:
        k = log_cov.shape[0]
        gradient = (sums[1:2 * k + 1:2, :, :3] - sums[2:2 * k + 2:2, :, :3]) / (2.0 * STEP)   # k x weeks x 3
        variance += np.einsum("jwm,jl,lwm->wm", gradient, log_cov, gradient)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    sd = np.sqrt(np.clip(variance, 0.0, None))
    lower, upper = np.clip(mean - z * sd, 0.0, None), mean + z * sd
    return np.stack([lower, upper], axis=2).reshape(len(mean), 6)


def weekly_expectations(summary: DataFrame, model: str, params: dict[str, float], weeks: int,
                        log_cov: np.ndarray | None = None, level: float = 0.9) -> DataFrame:
    """(week, persons, expected_purchases, expected_active, expected_revenue and their ``_lower`` /
    ``_upper`` bounds) for weeks 1..``weeks`` after the summary's as-of date. ``summary`` has
    frequency, recency, T (days) and expected_value (spend per purchase; 0 when unknown);
    ``log_cov`` is the fit's covariance of the log-parameters (None: persons' variance only)."""
    spec = MODELS[model]
    values = [params[k] for k in spec.parameters]
    points = parameter_points(values, log_cov is not None)

    def per_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        totals, persons, failed = np.zeros((len(points), weeks, 6)), 0, np.zeros(len(points))
        for b in batches:
            if b.empty:
                continue
            x, tx, T, n, spend, spend2 = (b[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "n",
                                                                                  "spend", "spend2"))
            for i, theta in enumerate(points):
                sums, bad = week_sums(spec, theta, x, tx, T, n, spend, spend2, weeks)
                totals[i] += sums
                failed[i] += bad
            persons += int(n.sum())
        for i in range(len(points)):
            yield pd.DataFrame({"point": i, "week": np.arange(1, weeks + 1, dtype="int32"), "persons": persons,
                                **{c: totals[i, :, j] for j, c in enumerate(SUMMED)},
                                "failed": np.where(np.arange(weeks) == 0, failed[i], 0.0)})

    spend = F.coalesce(F.col("expected_value").cast("double"), F.lit(0.0))
    distinct = summary.groupBy("frequency", "recency", "T").agg(
        F.count(F.lit(1)).cast("double").alias("n"), F.sum(spend).alias("spend"), F.sum(spend * spend).alias("spend2"))
    rows = (distinct.mapInPandas(per_partition, SUMS).groupBy("point", "week")
            .agg(F.sum("persons").alias("persons"), *[F.sum(c).alias(c) for c in (*SUMMED, "failed")])
            .collect())   # (2k + 1) x weeks rows: bounded by the horizon, not the data
    spark = summary.sparkSession
    if not rows:
        return spark.createDataFrame([], _OUT)
    failed = sum(r["failed"] for r in rows if r["point"] == 0)
    if failed:
        log.warning("customer base (%s): %d persons' P(alive) or expected purchases were not finite at the fitted "
                    "parameters; they count as alive with no purchases in every week", model, int(failed))
    sums = np.zeros((len(points), weeks, 6))
    persons = {r["week"]: r["persons"] for r in rows if r["point"] == 0}
    for r in rows:
        sums[r["point"], r["week"] - 1] = [r[c] for c in SUMMED]
    limits = bounds(sums, log_cov, level)
    out = [(k + 1, int(persons.get(k + 1, 0)), *map(float, sums[0, k, :3]), *map(float, limits[k]))
           for k in range(weeks)]
    return spark.createDataFrame(out, _OUT)


_OUT = "week int, persons bigint, " + ", ".join(f"{c} double" for c in (*MEASURES, *BOUNDS))


def actual_weeks(purchases: DataFrame, start: date, weeks: int) -> DataFrame:
    """(week, actual_purchases, actual_active, actual_revenue) of the persons whose first purchase
    is on or before ``start``, in weeks 1..``weeks`` after it (purchase days, as BTYD counts)."""
    first = purchases.groupBy("person_id").agg(F.min("order_date").alias("_first"))
    cohort = purchases.join(first.where(F.col("_first") <= F.lit(start)), "person_id")
    later = cohort.where((F.col("order_date") > F.lit(start))
                         & (F.col("order_date") <= F.lit(start + timedelta(days=7 * weeks))))
    days = later.groupBy("person_id", "order_date").agg(F.sum("net").alias("net"))
    week = (F.floor((F.datediff("order_date", F.lit(start)) - 1) / 7) + 1).cast("int")
    return days.groupBy(week.alias("week")).agg(
        F.count(F.lit(1)).cast("double").alias("actual_purchases"),
        F.countDistinct("person_id").cast("double").alias("actual_active"),
        F.sum("net").alias("actual_revenue"))


def frame(expected: DataFrame, start: date, kind: str, model: str, actual: DataFrame | None = None) -> DataFrame:
    """Rows of ``customer_base_forecast`` (actuals null for a forecast)."""
    spark = expected.sparkSession
    if actual is None:
        actual = spark.createDataFrame([], "week int, actual_purchases double, actual_active double, "
                                           "actual_revenue double")
    return expected.join(actual, "week", "left").select(
        F.lit(kind).alias("kind"), F.lit(model).alias("model"), F.lit(start).alias("start_date"), "week",
        F.date_add(F.lit(start), ((F.col("week") - 1) * 7 + 1).cast("int")).alias("week_start"),
        "persons", *MEASURES, *BOUNDS,
        *[F.coalesce(F.col(c), F.lit(0.0)).alias(c) if kind == "backtest" else F.col(c)
          for c in ("actual_purchases", "actual_active", "actual_revenue")])
