"""Precision and recall of accepting scored pairs at every threshold of a log-odds weight.

Below the areas: identity's evaluation and the report both draw the curve from pairs whose truth
is known (the generator's truth or a reviewer's labels).
"""
from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

STEP = 0.25  # bits: the curve's resolution in match weight


def threshold_curve(pairs: DataFrame, missed: int = 0, anchor: float = 0.0) -> list[dict[str, float]]:
    """Pairwise precision, recall and F1 of accepting the pairs at or above each match weight.

    ``pairs``: (match_weight, match) — scored candidate pairs whose truth is known (a reviewer's
    labels or the generator's truth); a null weight is a pair never accepted (vetoed). ``missed``:
    true matches that are not among the candidates at all (blocking never formed them), false
    negatives at every threshold. Weights are grouped to ``STEP`` bits from ``anchor`` (the
    configured threshold's weight, so that it is a row of its own), so the rows collected are
    bounded by the weights' range, not by the pairs; the first row is the highest threshold.
    Pairs, not clusters: closing the accepted pairs transitively can only add pairs.
    """
    buckets = (pairs.where(F.col("match_weight").isNotNull())
               .groupBy((F.floor((F.col("match_weight") - anchor) / STEP) * STEP + anchor).alias("w"))
               .agg(F.count(F.when(F.col("match"), 1)).alias("pos"), F.count(F.when(~F.col("match"), 1)).alias("neg"))
               .orderBy(F.desc("w")).collect())
    never = pairs.where(F.col("match_weight").isNull() & F.col("match")).count()
    positives = sum(b["pos"] for b in buckets) + never + missed
    rows, tp, fp = [], 0, 0
    for b in buckets:
        tp, fp = tp + b["pos"], fp + b["neg"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / positives if positives else 1.0
        rows.append({"weight": float(b["w"]), "probability": 1.0 / (1.0 + 2.0 ** -float(b["w"])), "tp": tp, "fp": fp,
                     "fn": positives - tp, "precision": precision, "recall": recall,
                     "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0})
    return rows


def weight_of(probability: float) -> float:
    return math.log2(probability / (1.0 - probability))


def at_threshold(curve: list[dict[str, float]], probability: float) -> dict[str, float]:
    """The counts of accepting pairs at ``probability`` and above: the lowest row at or above its
    weight (no pair lies between), labelled with the threshold itself."""
    cut = weight_of(probability)
    above = [r for r in curve if r["weight"] >= cut - 1e-9]
    if above:
        row = dict(above[-1])
    else:
        positives = curve[0]["tp"] + curve[0]["fn"] if curve else 0
        row = {"tp": 0, "fp": 0, "fn": positives, "precision": 1.0, "recall": 0.0 if positives else 1.0, "f1": 0.0}
    return {**row, "weight": cut, "probability": probability}


def summary(curve: list[dict[str, float]], threshold: float) -> dict:
    """The row at the configured threshold, the row of best F1, and the whole curve."""
    best = max(curve, key=lambda r: (r["f1"], r["weight"])) if curve else None
    return {"threshold": threshold, "at_threshold": at_threshold(curve, threshold), "best_f1": best, "curve": curve}


def reviewable(pairs: DataFrame, vetoed: Column | None = None) -> DataFrame:
    """``match_pairs`` as (l_record, r_record, match_weight) for threshold curves, a vetoed pair's
    weight null: no threshold accepts it. The verdict is the one saved with the pairs
    (``vetoed``); ``vetoed`` is the fallback for a table written before it was saved."""
    veto = F.col("vetoed") if "vetoed" in pairs.columns else (F.lit(False) if vetoed is None else vetoed)
    return pairs.select(F.least("l_record", "r_record").alias("l_record"),
                        F.greatest("l_record", "r_record").alias("r_record"),
                        F.when(~veto, F.col("match_weight")).alias("match_weight"))


def labelled_thresholds(scored: DataFrame, labels: DataFrame, threshold: float) -> dict:
    """The threshold curve over the pairs a reviewer labelled (``identity_labels``). A labelled
    match that is no candidate pair (blocking never formed it) is a false negative throughout; a
    labelled pair of records no longer in ``match_pairs`` is scored the same way."""
    tagged = (labels.select("l_record", "r_record", "match").join(scored, ["l_record", "r_record"], "left")
              .select("match_weight", "match").cache())
    counts = tagged.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("match"), 1)).alias("matches"),
                        F.count(F.when(F.col("match_weight").isNull(), 1)).alias("unscored")).first()
    out = {"labelled_pairs": int(counts["n"]), "labelled_matches": int(counts["matches"]),
           "labelled_not_accepted_at_any_threshold": int(counts["unscored"]),
           **summary(threshold_curve(tagged, anchor=weight_of(threshold)), threshold)}
    tagged.unpersist()
    return out
