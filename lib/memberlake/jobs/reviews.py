"""reviews: silver reviews -> sentiment per review, per aspect, per product, per category, per person.

Every run rescores all reviews (lexicon scoring is one vectorised pass; the cross-fitted models
depend on every labelled review), so ``review_sentiment``, ``review_aspects``,
``product_sentiment`` and ``aspect_sentiment`` are overwritten; ``person_sentiment`` and
``sentiment_metrics`` keep one slice per as-of date (default: the last review's date) for
point-in-time use by loyalty and churn. A run whose inputs and settings did not change does
nothing. Each run is an MLflow run (experiment ``<prefix>-reviews``) with the held-out comparison.
"""
from __future__ import annotations

import argparse
import logging
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.inputs import attach_person, person_graph_or_empty, person_sentiment, read_optional, read_silver
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import job_main, snapshot_predicate, write_slice
from memberlake.ops.runs import recorded_run, unchanged_since_last_run
from memberlake.ops.tracking import tracked_run
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.reviews.language import SUPPORTED
from memberlake.reviews.model import Comparison, compare, cross_fitted, weak_label
from memberlake.reviews.score import score_reviews
from memberlake.reviews.summaries import aspect_sentiment, final_scores, product_sentiment, review_aspects, review_sentiment
from memberlake.settings import Settings

NAME = "reviews"
HELP = "Score review sentiment (English, Chinese) and aspects; summarise by product, category and person."
log = logging.getLogger(__name__)

OVERWRITTEN = ("review_sentiment", "review_aspects", "product_sentiment", "aspect_sentiment")
DATED = ("person_sentiment", "sentiment_metrics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """reviews has only the common options (--as-of dates person_sentiment)."""


def last_review_date(reviews: DataFrame) -> date:
    last = reviews.agg(F.max("created_at")).first()[0]
    return last.date() if last is not None else date.today()


def comparisons(scored: DataFrame, settings: Settings
                ) -> tuple[DataFrame | None, dict[str, str], list[Comparison], list[str]]:
    """Cross-fitted model and blend scores for each language with enough weak labels, the method
    chosen per language, the held-out comparisons, and why a language kept its lexicon."""
    cfg = settings.reviews.model
    pinned = None if cfg.method == "auto" else cfg.method
    counts = {r["language"]: (r["n"], r["pos"]) for r in scored.where(F.col("label").isNotNull()).groupBy(
        "language").agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos")).collect()}  # one row per language
    parts, chosen, results, notes = [], {}, [], []
    for language in SUPPORTED:
        n, pos = counts.get(language, (0, 0))
        neg = n - int(pos or 0)
        if n < cfg.min_labelled or min(int(pos or 0), neg) < cfg.min_per_class:
            notes.append(f"{language}: {n} labelled reviews ({int(pos or 0)} positive, {neg} negative), fewer than "
                         f"reviews.model.min_labelled={cfg.min_labelled} / min_per_class={cfg.min_per_class}: lexicon")
            continue
        mine = scored.where(F.col("language") == language)
        cross = cross_fitted(mine, cfg).localCheckpoint()
        labelled = mine.where(F.col("label").isNotNull()).select("review_id", "label", "lexicon_score").join(
            cross, "review_id")
        result = compare(labelled, language, pinned)
        results.append(result)
        chosen[language] = result.chosen
        parts.append(cross)
    return reduce(DataFrame.unionByName, parts) if parts else None, chosen, results, notes


def metrics_frame(spark: SparkSession, as_of: date, results: list[Comparison]) -> DataFrame:
    rows = [(as_of, r.language, method, metric, float(value), method == r.chosen, r.labelled, r.positives)
            for r in results for method, values in r.metrics.items() for metric, value in values.items()]
    return spark.createDataFrame(rows, "as_of_date date, language string, method string, metric string, "
                                       "value double, chosen boolean, labelled bigint, positives bigint")


def log_to_mlflow(settings: Settings, as_of: date, params: dict, results: list[Comparison],
                  counts: dict[str, int]) -> None:
    import mlflow

    with tracked_run(settings, NAME, f"reviews {as_of}", params):
        mlflow.log_metrics({k: float(v) for k, v in counts.items()})
        for r in results:
            mlflow.set_tag(f"{r.language}.method", r.chosen)
            mlflow.log_metrics({f"{r.language}.{m}.{k}": v for m, vals in r.metrics.items() for k, v in vals.items()})


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    cfg = settings.reviews
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {}, monitoring=settings.monitoring) as run_:
        reviews = read_silver(spark, lake, run_, "reviews", required=False,
                              pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        if reviews is None:
            run_.stage("no silver_reviews (the landing zone has no reviews): nothing to do")
            return
        products = read_silver(spark, lake, run_, "products", required=False)
        graph = person_graph_or_empty(spark, lake, run_)
        read_optional(spark, lake, run_, "person_id_map")   # a re-stitched graph changes person ids
        as_of = getattr(args, "as_of", None) or last_review_date(reviews)
        run_.parameters.update({"as_of": as_of.isoformat(), **cfg.model_dump(mode="json")})
        if unchanged_since_last_run(spark, lake, run_) and all(lake.exists(spark, t) for t in (*OVERWRITTEN, *DATED)):
            run_.stage("inputs and parameters unchanged since the last reviews run: nothing to do")
            return
        located = attach_person(reviews, graph, "review_id").localCheckpoint()
        scored = score_reviews(located, cfg.aspects).join(
            located.select("review_id", weak_label(F.col("rating"), cfg.model).alias("label")), "review_id"
        ).localCheckpoint()
        by_language = {r["language"]: r["n"] for r in scored.groupBy("language").agg(
            F.count(F.lit(1)).alias("n")).collect()}   # at most three rows
        run_.stage("%d reviews scored by the lexicon: %s", sum(by_language.values()),
                   ", ".join(f"{k} {v}" for k, v in sorted(by_language.items())))
        cross, chosen, results, notes = comparisons(scored, settings)
        for note in notes:
            run_.stage("%s", note)
        for r in results:
            run_.stage("%s: %d labelled reviews; held-out ROC AUC %s -> %s", r.language, r.labelled,
                       ", ".join(f"{m} {v['roc_auc']:.4f}" for m, v in r.metrics.items()), r.chosen)
        scores = final_scores(scored, cross, chosen).localCheckpoint()
        sentiment = review_sentiment(located, scores, cfg).localCheckpoint()
        aspects = review_aspects(located, scored, cfg).localCheckpoint()
        outputs = {
            "review_sentiment": sentiment,
            "review_aspects": aspects,
            "product_sentiment": product_sentiment(sentiment),
            "aspect_sentiment": aspect_sentiment(aspects, products),
        }
        counts: dict[str, int] = {}
        for table, df in outputs.items():
            lake.overwrite(df, table)
            counts[table] = lake.read(spark, table).count()   # from the Delta log
            run_.record_write(table, counts[table], lake.version(spark, table))
        dated = {"person_sentiment": person_sentiment(sentiment, as_of, cfg.trend_days)}
        if results:
            dated["sentiment_metrics"] = metrics_frame(spark, as_of, results)
        for table, df in dated.items():
            write_slice(spark, lake, run_, df, table, snapshot_predicate(as_of))
        run_.stage("reviews %d, aspect mentions %d, products %d", counts["review_sentiment"],
                   counts["review_aspects"], counts["product_sentiment"])
        log_to_mlflow(settings, as_of, run_.parameters, results, {**counts, **{f"reviews_{k}": v for k, v in
                                                                             by_language.items()}})


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
