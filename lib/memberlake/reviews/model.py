"""Sentiment learnt from ratings (weak labels), cross-fitted, compared with the lexicon per language.

Where reviews carry ratings, a rating of ``positive_min`` or more is a positive label and one of
``negative_max`` or less a negative one (the middle is not a label). Per language, an MLlib
pipeline (hashed term frequencies of the review's tokens, IDF, logistic regression) is fitted
``folds`` times, each time on the labelled reviews outside one fold, and scores the reviews of
that fold: every review, labelled or not, gets a score from a model that never saw it, so the
comparison with the lexicon on the labelled reviews is a held-out one and a review's own rating
never leaks into its score. The blend is a logistic regression over (lexicon score, model
logit), cross-fitted over the same folds. The method with the best held-out ROC AUC (or the one
pinned in config) gives each language's final score. The text model refitted on every labelled
review of a language is what the job registers (:mod:`memberlake.reviews.champion`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import IDF, HashingTF, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.settings import SentimentModelSettings

log = logging.getLogger(__name__)

METHODS = ("lexicon", "model", "blend")


@dataclass(frozen=True)
class Comparison:
    """Held-out figures of one language: metrics[method][metric], the chosen method, sizes."""

    language: str
    metrics: dict[str, dict[str, float]]
    chosen: str
    labelled: int
    positives: int


def weak_label(rating: F.Column, cfg: SentimentModelSettings) -> F.Column:
    return (F.when(rating >= cfg.positive_min, F.lit(1.0))
            .when(rating <= cfg.negative_max, F.lit(0.0)))


def fold_of(review_id: F.Column, folds: int) -> F.Column:
    return F.pmod(F.xxhash64(F.lit("sentiment-fold"), review_id), F.lit(folds)).cast("int")


def _text_pipeline(cfg: SentimentModelSettings) -> Pipeline:
    return Pipeline(stages=[
        HashingTF(inputCol="tokens", outputCol="tf", numFeatures=cfg.num_features),
        IDF(inputCol="tf", outputCol="features", minDocFreq=cfg.min_doc_freq),
        LogisticRegression(featuresCol="features", labelCol="label", regParam=cfg.reg_param,
                           elasticNetParam=0.0, maxIter=cfg.max_iter, standardization=False),
    ])


def refit(labelled: DataFrame, cfg: SentimentModelSettings) -> PipelineModel:
    """The text model of one language fitted on all its labelled reviews (tokens, label): the
    version the registry keeps; its held-out figures are the cross-fitted ones."""
    return _text_pipeline(cfg).fit(labelled.select("tokens", "label"))


def model_scores(model: PipelineModel, rows: DataFrame) -> DataFrame:
    """``rows`` (with ``tokens``) plus ``model_score`` = 2 P(positive) - 1 of a fitted text model."""
    return model.transform(rows).select(
        *rows.columns, (2 * vector_to_array(F.col("probability")).getItem(1) - 1).alias("model_score"))


def _cross_fit(rows: DataFrame, folds: int, fit, out: str) -> DataFrame:
    """``rows`` (fold, label, features...) -> rows plus ``out`` = out-of-fold P(positive)."""
    parts = []
    for f in range(folds):
        train = rows.where((F.col("fold") != f) & F.col("label").isNotNull())
        model = fit(train)
        scored = model.transform(rows.where(F.col("fold") == f))
        parts.append(scored.select(*rows.columns, vector_to_array(F.col("probability")).getItem(1).alias(out)))
    return reduce(DataFrame.unionByName, parts)


def _logit(p: F.Column) -> F.Column:
    q = F.least(F.greatest(p, F.lit(1e-6)), F.lit(1 - 1e-6))
    return F.log(q / (1 - q))


def cross_fitted(scored: DataFrame, cfg: SentimentModelSettings) -> DataFrame:
    """(review_id, tokens, lexicon_score, label) of ONE language -> plus ``model_score`` and
    ``blend_score`` in [-1, 1], each from models that did not see the review's fold."""
    rows = scored.select("review_id", "tokens", "lexicon_score", "label",
                         fold_of(F.col("review_id"), cfg.folds).alias("fold")).localCheckpoint()
    text = _cross_fit(rows, cfg.folds, lambda train: _text_pipeline(cfg).fit(train), "p_model")
    text = text.select("review_id", "lexicon_score", "label", "fold", "p_model",
                       _logit(F.col("p_model")).alias("model_logit")).localCheckpoint()
    stack = Pipeline(stages=[
        VectorAssembler(inputCols=["lexicon_score", "model_logit"], outputCol="features"),
        LogisticRegression(featuresCol="features", labelCol="label", regParam=1e-4, maxIter=50),
    ])
    blended = _cross_fit(text, cfg.folds, lambda train: stack.fit(train), "p_blend")
    return blended.select("review_id", (2 * F.col("p_model") - 1).alias("model_score"),
                          (2 * F.col("p_blend") - 1).alias("blend_score"))


def roc_auc(rows: DataFrame, score: str) -> float:
    """ROC AUC of ``score`` against ``label`` (1.0 positive, 0.0 negative)."""
    evaluator = BinaryClassificationEvaluator(labelCol="label", metricName="areaUnderROC")
    return evaluator.evaluate(rows.select("label", F.col(score).alias("rawPrediction")))


def compare(labelled: DataFrame, language: str, pinned: str | None) -> Comparison:
    """Held-out ROC AUC, accuracy (score > 0 is positive) and macro F1 of each method against the
    weak labels; ``labelled`` has label, lexicon_score, model_score, blend_score."""
    metrics: dict[str, dict[str, float]] = {}
    aggs = []
    for m in METHODS:
        said_positive = F.col(f"{m}_score") > 0
        is_positive = F.col("label") == 1.0
        aggs += [F.sum((said_positive == is_positive).cast("double")).alias(f"{m}_hit"),
                 F.sum(said_positive.cast("double")).alias(f"{m}_pp"),
                 F.sum((said_positive & is_positive).cast("double")).alias(f"{m}_tp")]
    counts = labelled.agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos"), *aggs).first()
    n, pos = int(counts["n"]), int(counts["pos"] or 0)
    for m in METHODS:
        pp, tp = counts[f"{m}_pp"] or 0.0, counts[f"{m}_tp"] or 0.0
        fp, fn = pp - tp, pos - tp
        tn = n - tp - fp - fn
        f1_pos = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        f1_neg = 2 * tn / (2 * tn + fn + fp) if tn + fn + fp else 0.0
        auc = roc_auc(labelled, f"{m}_score")
        metrics[m] = {"roc_auc": auc, "accuracy": (counts[f"{m}_hit"] or 0.0) / n, "macro_f1": (f1_pos + f1_neg) / 2}
    chosen = pinned or max(METHODS, key=lambda m: metrics[m]["roc_auc"])
    return Comparison(language, metrics, chosen, n, pos)
