"""Rules turned into "bought together" lists and per-person recommendations.

Score of a rule = confidence x lift: how likely the consequent is given the antecedent, times
how much more likely than for a random basket. A person gets the consequents of every rule
whose whole antecedent is among their recent purchases and which they have never bought; an
item reached by several rules keeps its best score; ties rank by item id.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.basket.mining import ALL


def score() -> Column:
    return F.col("confidence") * F.col("lift")


def _overall(rules: DataFrame) -> DataFrame:
    return rules.where((F.col("segment_by") == ALL) & (F.col("segment") == ALL))


def bought_together(rules: DataFrame, top_n: int) -> DataFrame:
    """Per item, the top ``top_n`` items bought with it (single-item antecedents, all baskets)."""
    pairs = _overall(rules).where(F.size("antecedent") == 1).select(
        F.col("antecedent")[0].alias("item"), F.col("consequent").alias("recommended_item"),
        "support", "confidence", "lift", score().alias("score"))
    order = Window.partitionBy("item").orderBy(F.col("score").desc(), F.col("recommended_item"))
    return pairs.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= top_n)


def recommendations(rules: DataFrame, recent: DataFrame, owned: DataFrame, top_n: int) -> DataFrame:
    """(person_id, rank, item, score, confidence, lift, because): top ``top_n`` per person.

    ``recent`` and ``owned`` are (person_id, item) pairs: purchases in the recent window and ever.
    """
    ruled = _overall(rules).select(
        F.xxhash64(F.to_json("antecedent"), "consequent").alias("rule_id"), "antecedent", "consequent",
        "confidence", "lift", score().alias("score"))
    needs = ruled.select("rule_id", F.size("antecedent").alias("need"), F.explode("antecedent").alias("item"))
    matched = (recent.select("person_id", "item").distinct().join(needs, "item", "inner")
               .groupBy("person_id", "rule_id", "need").agg(F.count(F.lit(1)).alias("have"))
               .where(F.col("have") == F.col("need")))
    candidates = (matched.join(ruled, "rule_id", "inner")
                  .select("person_id", F.col("consequent").alias("item"), "score", "confidence", "lift",
                          F.col("antecedent").alias("because"))
                  .join(owned.select("person_id", "item").distinct(), ["person_id", "item"], "left_anti"))
    best = Window.partitionBy("person_id", "item").orderBy(F.col("score").desc(), F.to_json("because"))
    ranked = Window.partitionBy("person_id").orderBy(F.col("score").desc(), F.col("item"))
    return (candidates.withColumn("_n", F.row_number().over(best)).where("_n = 1").drop("_n")
            .withColumn("rank", F.row_number().over(ranked)).where(F.col("rank") <= top_n)
            .select("person_id", "rank", "item", "score", "confidence", "lift", "because"))
