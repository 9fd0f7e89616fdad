"""One reviews run: lexicon scores, cross-fitted models where ratings allow, and the summaries.

:func:`analyse` is what the ``reviews`` job runs between reading its inputs and publishing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.inputs import attach_person, person_sentiment
from memberlake.ops.context import Outputs
from memberlake.ops.tracking import tracked_run
from memberlake.reviews.language import SUPPORTED
from memberlake.reviews.model import Comparison, compare, cross_fitted, weak_label
from memberlake.reviews.score import score_reviews
from memberlake.reviews.summaries import aspect_sentiment, final_scores, product_sentiment, review_aspects, review_sentiment
from memberlake.settings import Settings

log = logging.getLogger(__name__)

OVERWRITTEN = (Tables.REVIEW_SENTIMENT, Tables.REVIEW_ASPECTS, Tables.PRODUCT_SENTIMENT, Tables.ASPECT_SENTIMENT)
DATED = (Tables.PERSON_SENTIMENT, Tables.SENTIMENT_METRICS)


@dataclass
class Reviews(Outputs):
    """The run's tables, plus the held-out comparisons for MLflow."""

    results: list[Comparison] = field(default_factory=list)


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


def log_run(settings: Settings, job: str, as_of: date, params: dict, results: list[Comparison],
            counts: dict[str, int]) -> None:
    """The run's MLflow metrics: rows per table and language, each language's held-out comparison."""
    import mlflow

    with tracked_run(settings, job, f"reviews {as_of}", params):
        mlflow.log_metrics({k: float(v) for k, v in counts.items()})
        for r in results:
            mlflow.set_tag(f"{r.language}.method", r.chosen)
            mlflow.log_metrics({f"{r.language}.{m}.{k}": v for m, vals in r.metrics.items() for k, v in vals.items()})


def analyse(reviews: DataFrame, products: DataFrame | None, graph: DataFrame, settings: Settings, as_of: date,
            stage: Callable[..., None]) -> Reviews:
    """Every reviews table: the four overwritten ones and the ``as_of`` slices of the dated ones."""
    cfg = settings.reviews
    located = attach_person(reviews, graph, "review_id").localCheckpoint()
    scored = score_reviews(located, cfg.aspects).join(
        located.select("review_id", weak_label(F.col("rating"), cfg.model).alias("label")), "review_id"
    ).localCheckpoint()
    by_language = {r["language"]: r["n"] for r in scored.groupBy("language").agg(
        F.count(F.lit(1)).alias("n")).collect()}   # at most three rows
    stage("%d reviews scored by the lexicon: %s", sum(by_language.values()),
          ", ".join(f"{k} {v}" for k, v in sorted(by_language.items())))
    cross, chosen, results, notes = comparisons(scored, settings)
    for note in notes:
        stage("%s", note)
    for r in results:
        stage("%s: %d labelled reviews; held-out ROC AUC %s -> %s", r.language, r.labelled,
              ", ".join(f"{m} {v['roc_auc']:.4f}" for m, v in r.metrics.items()), r.chosen)
    scores = final_scores(scored, cross, chosen).localCheckpoint()
    sentiment = review_sentiment(located, scores, cfg).localCheckpoint()
    aspects = review_aspects(located, scored, cfg).localCheckpoint()
    out = Reviews(as_of=as_of, results=results, counts={f"reviews_{k}": v for k, v in by_language.items()})
    out.whole = {Tables.REVIEW_SENTIMENT: sentiment, Tables.REVIEW_ASPECTS: aspects,
                 Tables.PRODUCT_SENTIMENT: product_sentiment(sentiment),
                 Tables.ASPECT_SENTIMENT: aspect_sentiment(aspects, products)}
    out.slices[Tables.PERSON_SENTIMENT] = person_sentiment(sentiment, as_of, cfg.trend_days)
    if results:
        out.slices[Tables.SENTIMENT_METRICS] = metrics_frame(reviews.sparkSession, as_of, results)
    return out
