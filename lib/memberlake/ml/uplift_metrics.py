"""Uplift evaluation in Spark: uplift and Qini curves, their normalised areas, uplift@k, deciles.

The definitions are scikit-uplift's (``sklift.metrics``, 0.5), so figures compare one to one:

- curves are taken at every distinct score, highest first, with cumulative treated and control
  counts and responders ``(n_t, y_t, n_c, y_c)`` over the ``n`` rows scored at least that high;
  the uplift curve is ``(y_t/n_t - y_c/n_c) * n`` and the Qini curve ``y_t - y_c * n_t/n_c``
  (a zero denominator gives 0), both starting at (0, 0);
- ``uplift_auc`` and ``qini_coefficient`` are the trapezoid area between the curve and the
  straight line to its end point, over the same area of the perfect curve (the curve of the
  ideal ordering of these rows); 1 is perfect, 0 random, below 0 worse than random;
- ``uplift_at_k``: among the top ``int(k * n)`` rows by score, treated minus control response
  rate (sklift's ``strategy='overall'``);
- ``by_decile``: ten groups by score (sizes as ``numpy.array_split``), response rates of each arm
  and their difference.

Where rows tie on the score across a cut (uplift@k, decile edges), which of them fall inside is
decided by a hash of the row's values, so the figure does not depend on how the rows are
partitioned. With a key among the columns (the job's rows carry campaign and person) the hash
orders tied rows like a seeded shuffle; rows of only (y, w, score) would be ordered in blocks by
arm and outcome, so keep a key. scikit-uplift takes tied rows in reverse input order: the two
agree exactly when no tie crosses a cut (scores of a continuous model) and differ slightly
otherwise (a coarse score, e.g. recency in days).

Rows are first reduced to one per distinct score, so the curve's cumulative window reads as many
rows as there are distinct scores; that window has no partition key (a curve is one ordering),
which is fine for the held-out contacts it is meant for.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def _ratio(a: Column, b: Column) -> Column:
    return F.when(b != 0, a / b).otherwise(F.lit(0.0))


def curve(scored: DataFrame, score: str | Column, kind: str, y: str = "y", w: str = "w") -> DataFrame:
    """Points (x, value) of the ``kind`` ('uplift' or 'qini') curve of ``score``, in order, with
    the starting point (0, 0)."""
    s = F.col(score) if isinstance(score, str) else score
    by = (scored.select(s.cast("double").alias("_s"), F.col(y).cast("double").alias("_y"),
                        F.col(w).cast("double").alias("_w"))
          .groupBy("_s").agg(F.count(F.lit(1)).alias("_n"), F.sum("_w").alias("_nt"),
                             F.sum(F.col("_y") * F.col("_w")).alias("_yt"),
                             F.sum(F.col("_y") * (1 - F.col("_w"))).alias("_yc")))
    upto = Window.orderBy(F.col("_s").desc()).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = by.select("_s", *[F.sum(c).over(upto).alias(c) for c in ("_n", "_nt", "_yt", "_yc")])
    n, nt, yt, yc = (F.col(c) for c in ("_n", "_nt", "_yt", "_yc"))
    nc = n - nt
    value = ((_ratio(yt, nt) - _ratio(yc, nc)) * n if kind == "uplift" else yt - yc * _ratio(nt, nc))
    return cum.select(n.cast("double").alias("x"), value.alias("value"), F.col("_s").alias("score"))


def _area(points: DataFrame) -> tuple[float, float, float]:
    """(trapezoid area, last x, last value) of curve points, (0, 0) included."""
    order = Window.orderBy("x")
    row = (points.select("x", "value",
                         F.lag("x", 1, 0.0).over(order).alias("px"), F.lag("value", 1, 0.0).over(order).alias("pv"))
           .agg(F.sum((F.col("x") - F.col("px")) * (F.col("value") + F.col("pv")) / 2).alias("area"),
                F.max_by("x", "x").alias("x"), F.max_by("value", "x").alias("value")).first())
    return float(row["area"] or 0.0), float(row["x"] or 0.0), float(row["value"] or 0.0)


def _normalised(scored: DataFrame, score: str, kind: str, perfect: Column, y: str, w: str) -> float:
    actual, _, _ = _area(curve(scored, score, kind, y, w))
    best, x_end, v_end = _area(curve(scored, perfect, kind, y, w))
    base = x_end * v_end / 2
    return (actual - base) / (best - base) if best != base else float("nan")


def uplift_auc(scored: DataFrame, score: str, y: str = "y", w: str = "w") -> float:
    """Normalised area under the uplift curve (sklift ``uplift_auc_score``)."""
    counts = scored.agg(F.sum(((F.col(y) == 1) & (F.col(w) == 0)).cast("int")).alias("cr"),
                        F.sum(((F.col(y) == 0) & (F.col(w) == 1)).cast("int")).alias("tn")).first()
    summand = F.col(y) if (counts["cr"] or 0) > (counts["tn"] or 0) else F.col(w)
    perfect = 2 * (F.col(y) == F.col(w)).cast("int") + summand
    return _normalised(scored, score, "uplift", perfect, y, w)


def qini_coefficient(scored: DataFrame, score: str, y: str = "y", w: str = "w") -> float:
    """Normalised area under the Qini curve (sklift ``qini_auc_score``, negative effects kept)."""
    perfect = F.col(y) * F.col(w) - F.col(y) * (1 - F.col(w))
    return _normalised(scored, score, "qini", perfect, y, w)


def _by_score(scored: DataFrame, score: str) -> list[Column]:
    """Highest score first; ties in a fixed order (a hash of the row), whatever the partitioning."""
    return [F.col(score).desc(), F.xxhash64(*[F.col(f"`{c}`") for c in scored.columns])]


def uplift_at_k(scored: DataFrame, score: str, k: float = 0.3, y: str = "y", w: str = "w") -> float:
    """Treated minus control response rate among the top ``int(k * n)`` rows by ``score``."""
    n = scored.count()
    top = scored.orderBy(*_by_score(scored, score)).limit(int(n * k))
    row = top.agg(F.avg(F.when(F.col(w) == 1, F.col(y))).alias("t"), F.avg(F.when(F.col(w) == 0, F.col(y))).alias("c")
                  ).first()
    if row["t"] is None or row["c"] is None:
        return float("nan")
    return float(row["t"]) - float(row["c"])


@dataclass(frozen=True)
class Decile:
    decile: int
    n_treatment: int
    n_control: int
    response_rate_treatment: float | None
    response_rate_control: float | None
    uplift: float | None


def by_decile(scored: DataFrame, score: str, y: str = "y", w: str = "w", bins: int = 10) -> list[Decile]:
    """Response rates per arm and their difference in ``bins`` groups by score, highest first."""
    grouped = scored.withColumn("_bin", F.ntile(bins).over(Window.orderBy(*_by_score(scored, score))))
    rows = grouped.groupBy("_bin").agg(
        F.sum(F.col(w).cast("int")).alias("nt"), F.sum((1 - F.col(w)).cast("int")).alias("nc"),
        F.avg(F.when(F.col(w) == 1, F.col(y))).alias("rt"), F.avg(F.when(F.col(w) == 0, F.col(y))).alias("rc"),
    ).orderBy("_bin").collect()   # ``bins`` rows
    out = []
    for r in rows:
        rt, rc = r["rt"], r["rc"]
        out.append(Decile(int(r["_bin"]), int(r["nt"] or 0), int(r["nc"] or 0), rt, rc,
                          None if rt is None or rc is None else float(rt) - float(rc)))
    return out
