"""One reviews run: lexicon scores, cross-fitted models where ratings allow, and the summaries.

:func:`analyse` is what the ``reviews`` job runs between reading its inputs and publishing; the
registry (reading a champion, registering a refit) stays in the job, passed in as ``champion``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import Callable

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.inputs import attach_person, person_sentiment
from memberlake.ops.context import Outputs
from memberlake.reviews.champion import Learnt
from memberlake.reviews.language import SUPPORTED
from memberlake.reviews.model import Comparison, compare, cross_fitted, model_scores, refit, weak_label
from memberlake.reviews.score import score_reviews
from memberlake.reviews.summaries import aspect_sentiment, final_scores, product_sentiment, review_aspects, review_sentiment
from memberlake.settings import Settings

log = logging.getLogger(__name__)

OVERWRITTEN = (Tables.REVIEW_SENTIMENT, Tables.REVIEW_ASPECTS, Tables.PRODUCT_SENTIMENT, Tables.ASPECT_SENTIMENT)
DATED = (Tables.PERSON_SENTIMENT, Tables.SENTIMENT_METRICS)


@dataclass
class Reviews(Outputs):
    """The run's tables, plus the held-out comparisons for MLflow and the refits to register."""

    results: list[Comparison] = field(default_factory=list)
    learnt: list[Learnt] = field(default_factory=list)


def last_review_date(reviews: DataFrame) -> date:
    last = reviews.agg(F.max("created_at")).first()[0]
    return last.date() if last is not None else date.today()


def comparisons(scored: DataFrame, dates: DataFrame, settings: Settings
                ) -> tuple[DataFrame | None, dict[str, str], list[Comparison], list[Learnt], list[str]]:
    """Cross-fitted model and blend scores for each language with enough weak labels, the method
    chosen per language, the held-out comparisons, the refits, and why a language kept its lexicon.
    ``dates`` is (review_id, created_at)."""
    cfg = settings.reviews.model
    pinned = None if cfg.method == "auto" else cfg.method
    counts = {r["language"]: (r["n"], r["pos"]) for r in scored.where(F.col("label").isNotNull()).groupBy(
        "language").agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos")).collect()}  # one row per language
    parts, chosen, results, learnt, notes = [], {}, [], [], []
    for language in SUPPORTED:
        n, pos = counts.get(language, (0, 0))
        neg = n - int(pos or 0)
        if n < cfg.min_labelled or min(int(pos or 0), neg) < cfg.min_per_class:
            notes.append(f"{language}: {n} labelled reviews ({int(pos or 0)} positive, {neg} negative), fewer than "
                         f"reviews.model.min_labelled={cfg.min_labelled} / min_per_class={cfg.min_per_class}: lexicon")
            continue
        mine = scored.where(F.col("language") == language)
        rated = mine.where(F.col("label").isNotNull())
        cross = cross_fitted(mine, cfg).localCheckpoint()
        labelled = rated.select("review_id", "label", "lexicon_score").join(cross, "review_id")
        result = compare(labelled, language, pinned)
        results.append(result)
        evidence = rated.select("review_id", "tokens", "label").join(dates, "review_id").join(
            cross.select("review_id", "model_score"), "review_id")
        learnt.append(Learnt(language, refit(rated, cfg), evidence,
                             result.metrics["model"]["roc_auc"],
                             result.metrics["model"]["roc_auc"] > result.metrics["lexicon"]["roc_auc"]))
        chosen[language] = result.chosen
        parts.append(cross)
    return reduce(DataFrame.unionByName, parts) if parts else None, chosen, results, learnt, notes


def metrics_frame(spark: SparkSession, as_of: date, results: list[Comparison]) -> DataFrame:
    rows = [(as_of, r.language, method, metric, float(value), method == r.chosen, r.labelled, r.positives)
            for r in results for method, values in r.metrics.items() for metric, value in values.items()]
    return spark.createDataFrame(rows, "as_of_date date, language string, method string, metric string, "
                                       "value double, chosen boolean, labelled bigint, positives bigint")


def log_metrics(results: list[Comparison], counts: dict[str, int]) -> None:
    """The active MLflow run's metrics: rows per table and language, each language's held-out
    comparison."""
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in counts.items()})
    for r in results:
        mlflow.set_tag(f"{r.language}.method", r.chosen)
        mlflow.log_metrics({f"{r.language}.{m}.{k}": v for m, vals in r.metrics.items() for k, v in vals.items()})


def by_champions(scored: DataFrame, languages: list[str],
                 champion: Callable[[str], tuple[PipelineModel, str] | None]
                 ) -> tuple[DataFrame | None, dict[str, str], list[str]]:
    """Model scores from each language's registered champion (``champion`` returns it, or None),
    for ``languages``: the ones with reviews but too few ratings in this run."""
    parts, chosen, notes = [], {}, []
    for language in languages:
        found = champion(language)
        if found is None:
            continue
        model, version = found
        mine = scored.where(F.col("language") == language).select("review_id", "tokens")
        parts.append(model_scores(model, mine).select("review_id", "model_score",
                                                      F.lit(None).cast("double").alias("blend_score")))
        chosen[language] = "model"
        notes.append(f"{language}: scored by the registered champion v{version} (it beat the lexicon on its "
                     f"held-out reviews)")
    return reduce(DataFrame.unionByName, parts) if parts else None, chosen, notes


def analyse(reviews: DataFrame, products: DataFrame | None, graph: DataFrame, settings: Settings, as_of: date,
            stage: Callable[..., None],
            champion: Callable[[str], tuple[PipelineModel, str] | None] = lambda language: None) -> Reviews:
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
    cross, chosen, results, learnt, notes = comparisons(scored, located.select("review_id", "created_at"), settings)
    unlabelled = [lang for lang in SUPPORTED if lang in by_language and lang not in chosen]
    borrowed, borrowed_chosen, borrowed_notes = by_champions(scored, unlabelled, champion)
    if borrowed is not None:
        cross = borrowed if cross is None else cross.unionByName(borrowed)
        chosen.update(borrowed_chosen)
    for note in notes + borrowed_notes:
        stage("%s", note)
    for r in results:
        stage("%s: %d labelled reviews; held-out ROC AUC %s -> %s", r.language, r.labelled,
              ", ".join(f"{m} {v['roc_auc']:.4f}" for m, v in r.metrics.items()), r.chosen)
    scores = final_scores(scored, cross, chosen).localCheckpoint()
    sentiment = review_sentiment(located, scores, cfg).localCheckpoint()
    aspects = review_aspects(located, scored, cfg).localCheckpoint()
    out = Reviews(as_of=as_of, results=results, learnt=learnt, counts={f"reviews_{k}": v for k, v in by_language.items()})
    out.whole = {Tables.REVIEW_SENTIMENT: sentiment, Tables.REVIEW_ASPECTS: aspects,
                 Tables.PRODUCT_SENTIMENT: product_sentiment(sentiment),
                 Tables.ASPECT_SENTIMENT: aspect_sentiment(aspects, products)}
    out.slices[Tables.PERSON_SENTIMENT] = person_sentiment(sentiment, as_of, cfg.trend_days)
    if results:
        out.slices[Tables.SENTIMENT_METRICS] = metrics_frame(reviews.sparkSession, as_of, results)
    return out
