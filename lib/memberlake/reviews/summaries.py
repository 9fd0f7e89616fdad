"""Review-level results and their summaries by product, aspect, month and person (pure transforms)."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.settings import ReviewSettings


def label(score: Column, cfg: ReviewSettings) -> Column:
    """negative / neutral / positive by the configured thresholds; null score -> null label."""
    return (F.when(score < cfg.negative_below, F.lit("negative"))
            .when(score > cfg.positive_above, F.lit("positive"))
            .when(score.isNotNull(), F.lit("neutral")))


def final_scores(scored: DataFrame, cross: DataFrame | None, chosen: dict[str, str]) -> DataFrame:
    """``scored`` plus model and blend scores (null where a language has no model) and the chosen
    ``method`` and ``score`` per review: the lexicon unless the language's comparison chose otherwise."""
    if cross is None:
        out = scored.select("*", F.lit(None).cast("double").alias("model_score"),
                            F.lit(None).cast("double").alias("blend_score"))
    else:
        out = scored.join(cross, "review_id", "left")
    method = F.lit("lexicon")
    for language, m in chosen.items():
        method = F.when(F.col("language") == language, F.lit(m)).otherwise(method)
    method = F.when(F.col("lexicon_score").isNull(), F.lit(None).cast("string")).otherwise(method)
    score = (F.when(method == "model", F.col("model_score")).when(method == "blend", F.col("blend_score"))
             .otherwise(F.col("lexicon_score")))
    return out.select("*", method.alias("method"), score.alias("score"))


def review_sentiment(reviews: DataFrame, scores: DataFrame, cfg: ReviewSettings) -> DataFrame:
    """One row per review: who, what, when, and how it scored (no text)."""
    return reviews.select("review_id", "person_id", "order_id", "product_id", "created_at", "channel", "rating").join(
        scores, "review_id", "inner").select(
        "review_id", "person_id", "order_id", "product_id", "created_at", "channel", "rating", "language",
        "language_detected", "sentences", "opinion_sentences", "lexicon_score", "model_score", "blend_score",
        "method", "score", label(F.col("score"), cfg).alias("label"))


def review_aspects(reviews: DataFrame, scored: DataFrame, cfg: ReviewSettings) -> DataFrame:
    """One row per review and aspect it mentions, with the lexicon score of those sentences."""
    exploded = scored.select("review_id", "language", F.explode("aspects").alias("a"))
    return exploded.join(reviews.select("review_id", "person_id", "product_id", "created_at"), "review_id").select(
        "review_id", "person_id", "product_id", "created_at", "language", F.col("a.aspect").alias("aspect"),
        F.col("a.mentions").alias("mentions"), F.col("a.score").alias("score"),
        label(F.col("a.score"), cfg).alias("label"))


def _month(ts: str) -> Column:
    return F.trunc(F.col(ts), "month").alias("month")


def product_sentiment(sentiment: DataFrame) -> DataFrame:
    """Per product and month: reviews, mean score, positive and negative shares, mean rating."""
    rated = sentiment.where(F.col("product_id").isNotNull() & F.col("score").isNotNull()
                            & F.col("created_at").isNotNull())
    return rated.groupBy("product_id", _month("created_at")).agg(
        F.count(F.lit(1)).alias("reviews"),
        F.avg("score").alias("mean_score"),
        F.avg((F.col("label") == "positive").cast("double")).alias("positive_share"),
        F.avg((F.col("label") == "negative").cast("double")).alias("negative_share"),
        F.avg("rating").alias("mean_rating"))


def aspect_sentiment(aspects: DataFrame, products: DataFrame | None) -> DataFrame:
    """Per product category, aspect and month: mentions, mean score and negative share."""
    dated = aspects.where(F.col("created_at").isNotNull())
    if products is not None:
        dated = dated.join(products.select("product_id", "category"), "product_id", "left")
    else:
        dated = dated.withColumn("category", F.lit(None).cast("string"))
    return dated.groupBy(F.coalesce("category", F.lit("(unknown)")).alias("category"), "aspect",
                         _month("created_at")).agg(
        F.count(F.lit(1)).alias("reviews"),
        F.avg("score").alias("mean_score"),
        F.avg((F.col("label") == "negative").cast("double")).alias("negative_share"))
