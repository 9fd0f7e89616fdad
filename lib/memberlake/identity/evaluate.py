"""Identity quality against ground truth: pairwise and B-cubed precision/recall/F1 over member
records, split and over-merged true persons, largest component."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.thresholds import summary, threshold_curve, weight_of


def _pairs(df: DataFrame, *keys: str) -> int:
    row = df.groupBy(*keys).count().agg(F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("p")).first()
    return int(row["p"] or 0)


def bcubed(joined: DataFrame) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1: per record, the share of its predicted cluster that is truly
    its person and of its true person that it was clustered with, averaged over records. Unlike
    pair counts, a large wrong merge does not dominate."""
    n = joined.count()
    if not n:
        return 1.0, 1.0, 1.0
    cells = joined.groupBy("pred", "true").agg(F.count(F.lit(1)).alias("n_pt"))
    by_pred = joined.groupBy("pred").agg(F.count(F.lit(1)).alias("n_p"))
    by_true = joined.groupBy("true").agg(F.count(F.lit(1)).alias("n_t"))
    row = (cells.join(by_pred, "pred").join(by_true, "true")
           .agg(F.sum(F.col("n_pt") * F.col("n_pt") / F.col("n_p")).alias("p"),
                F.sum(F.col("n_pt") * F.col("n_pt") / F.col("n_t")).alias("r")).first())
    precision, recall = row["p"] / n, row["r"] / n
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def pairwise_metrics(predicted: DataFrame, truth: DataFrame) -> dict[str, float]:
    """``predicted``: (record, pred); ``truth``: (record, true). Records in both are scored."""
    joined = predicted.join(truth, "record", "inner").cache()
    together, predicted_pairs, true_pairs = _pairs(joined, "pred", "true"), _pairs(joined, "pred"), _pairs(joined, "true")
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_true = joined.groupBy("true").agg(F.countDistinct("pred").alias("ids"))
    per_pred = joined.groupBy("pred").agg(F.countDistinct("true").alias("persons"))
    counts = per_true.agg(F.count(F.lit(1)).alias("n"), F.sum((F.col("ids") > 1).cast("int")).alias("split"),
                          F.sum((F.col("ids") <= 2).cast("int")).alias("at_most_two")).first()
    merged = per_pred.where(F.col("persons") > 1).count()
    largest = joined.groupBy("pred").count().agg(F.max("count")).first()[0] or 0
    records = joined.count()
    b_precision, b_recall, b_f1 = bcubed(joined)
    joined.unpersist()
    return {
        "records": records, "true_persons": int(counts["n"]), "precision": precision, "recall": recall, "f1": f1,
        "true_pairs": true_pairs, "predicted_pairs": predicted_pairs,
        "split_persons": int(counts["split"] or 0),
        "persons_in_at_most_two_ids": (counts["at_most_two"] or 0) / counts["n"] if counts["n"] else 1.0,
        "overmerged_ids": merged, "largest_cluster_records": int(largest),
        "bcubed_precision": b_precision, "bcubed_recall": b_recall, "bcubed_f1": b_f1,
    }


def blocking_report(pairs: DataFrame, truth: DataFrame, rules: list[str], records: int) -> dict:
    """Candidate pairs and true pairs found, per blocking rule and for the union.

    ``pairs``: (l_record, r_record, rules) as ``matching.block`` forms them (bit i of ``rules`` set
    when rule i pairs them); ``truth``: (record, true) for the ``records`` compared. A rule's
    ``only_here`` counts the true pairs no other rule forms: what the rule is worth."""
    true_pairs = _pairs(truth, "true")
    tagged = (pairs.join(truth.toDF("l_record", "l_true"), "l_record")
              .join(truth.toDF("r_record", "r_true"), "r_record")
              .select("rules", (F.col("l_true") == F.col("r_true")).alias("match")))
    bit = [F.col("rules").bitwiseAND(F.lit(1 << i)) != 0 for i in range(len(rules))]
    row = tagged.agg(F.count(F.lit(1)).alias("all"), F.count(F.when(F.col("match"), 1)).alias("found"), *[
        agg for i in range(len(rules)) for agg in (
            F.count(F.when(bit[i], 1)).alias(f"p{i}"), F.count(F.when(bit[i] & F.col("match"), 1)).alias(f"t{i}"),
            F.count(F.when((F.col("rules") == (1 << i)) & F.col("match"), 1)).alias(f"o{i}"))]).first()
    total = records * (records - 1) / 2
    return {
        "records": records, "true_pairs": true_pairs, "candidates": int(row["all"]), "true_pairs_found": int(row["found"]),
        "recall": row["found"] / true_pairs if true_pairs else 1.0,
        "reduction_ratio": 1.0 - row["all"] / total if total else 1.0,
        "rules": [{"rule": rule, "pairs": int(row[f"p{i}"]), "true_pairs": int(row[f"t{i}"]),
                   "recall": row[f"t{i}"] / true_pairs if true_pairs else 1.0, "only_here": int(row[f"o{i}"])}
                  for i, rule in enumerate(rules)],
    }


def truth_thresholds(scored: DataFrame, truth: DataFrame, threshold: float) -> dict:
    """The threshold curve of ``scored`` (l_record, r_record, match_weight) against a truth
    (record, true); true pairs blocking never formed are false negatives throughout."""
    tagged = (scored.join(truth.toDF("l_record", "l_true"), "l_record").join(truth.toDF("r_record", "r_true"), "r_record")
              .select("match_weight", (F.col("l_true") == F.col("r_true")).alias("match")))
    found = tagged.where("match").count()
    curve = threshold_curve(tagged, _pairs(truth, "true") - found, anchor=weight_of(threshold))
    return summary(curve, threshold)

