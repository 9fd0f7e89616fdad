"""Model monitoring: population stability of features and scores, realised AUC of matured scores.

- **PSI** (population stability index) of a column between a reference population (what the
  model was evaluated on) and the population scored now: the reference's deciles cut both into
  ten bins (plus one for nulls); ``PSI = sum((cur - ref) * ln(cur / ref))`` over the bins' shares,
  each share floored at ``EPSILON`` so an empty bin stays finite. Below 0.1 is stable by the
  usual reading, 0.1-0.25 a shift worth a look, above 0.25 a shift that calls for retraining.
- **Realised AUC**: once the churn horizon after a scoring date has passed, the persons scored
  then have labels (a completed order in the horizon or not); the ROC AUC of their scores
  against those labels is what the model really achieved.

Both are computed in Spark; only bin counts (columns x 11 numbers) reach the driver.
"""
from __future__ import annotations

import math
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.ml.churn import evaluate
from memberlake.ml.features import churn_labels

BINS = 10
EPSILON = 1e-4


def _edges(reference: DataFrame, columns: list[str], bins: int) -> dict[str, list[float]]:
    """Inner decile edges of each column on the reference (distinct, ascending)."""
    probs = [i / bins for i in range(1, bins)]
    quantiles = reference.approxQuantile(columns, probs, 0.001)
    return {c: sorted(set(q)) for c, q in zip(columns, quantiles, strict=True)}


def _bin(column: str, edges: list[float]) -> Column:
    """0..len(edges) by how many edges the value exceeds; -1 for null."""
    value = F.col(column).cast("double")
    above = sum((value > F.lit(e)).cast("int") for e in edges) if edges else F.lit(0)
    return F.when(value.isNull(), F.lit(-1)).otherwise(above)


def _shares(df: DataFrame, edges: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per column, the share of rows in each bin (index 0 = nulls, then the value bins), one pass."""
    aggs = [F.count(F.lit(1)).alias("_n")]
    for i, (c, e) in enumerate(edges.items()):
        b = _bin(c, e)
        aggs += [F.count(F.when(b == k, 1)).alias(f"c{i}_{k + 1}") for k in range(-1, len(e) + 1)]
    row = df.agg(*aggs).first()
    n = row["_n"] or 0
    return {c: [(row[f"c{i}_{k + 1}"] / n) if n else 0.0 for k in range(-1, len(e) + 1)]
            for i, (c, e) in enumerate(edges.items())}


def psi(expected: list[float], actual: list[float]) -> float:
    """PSI of two share vectors over the same bins."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def stability(reference: DataFrame, current: DataFrame, columns: list[str], bins: int = BINS) -> dict[str, float]:
    """PSI of each of ``columns`` from ``reference`` to ``current``."""
    if not columns:
        return {}
    edges = _edges(reference.select(*[F.col(c).cast("double").alias(c) for c in columns]), columns, bins)
    ref, cur = _shares(reference, edges), _shares(current, edges)
    return {c: psi(ref[c], cur[c]) for c in columns}


def realized_auc(scores: DataFrame, purchases: DataFrame, horizon_days: int, last_day: date) -> list[tuple[date, float]]:
    """(scoring date, ROC AUC of its probabilities against what happened) for every date in
    ``scores`` (person_id, as_of_date, probability) whose horizon ends by ``last_day``; dates
    whose persons all churned or all stayed have no AUC and are left out."""
    matured = scores.where(F.date_add("as_of_date", horizon_days) <= F.lit(last_day))
    out = []
    for (day,) in matured.select("as_of_date").distinct().orderBy("as_of_date").collect():   # one row per date
        scored = matured.where(F.col("as_of_date") == F.lit(day)).select("person_id", "as_of_date", "probability")
        labelled = churn_labels(purchases, scored, horizon_days).localCheckpoint()
        if labelled.select("churned").distinct().count() == 2:
            out.append((day, evaluate(labelled, "areaUnderROC", score="probability")))
    return out
