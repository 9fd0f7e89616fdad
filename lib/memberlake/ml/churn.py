"""Churn models: candidates tuned on a time-based validation split, evaluated on a later test split.

MLlib's TrainValidationSplit and CrossValidator split rows at random, which would train on
persons' futures; here every candidate (model type x grid point) is fitted on the training
dates and scored on the validation date, ``parallelism`` fits at a time, and the winner is
evaluated once on the test date. Curves are computed from probability buckets aggregated in
Spark (at most 1,001 rows reach the driver, whatever the data size).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from typing import Any

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from memberlake.settings import ChurnSettings

log = logging.getLogger(__name__)

LABEL = "churned"
BUCKETS = 1000
# The key under which ``test_report`` holds each evaluator metric.
REPORT_KEY = {"areaUnderROC": "roc_auc", "areaUnderPR": "pr_auc"}


def probability(col: str = "probability") -> Column:
    """P(churn) from MLlib's probability vector."""
    return vector_to_array(F.col(col))[1]


def with_weights(train: DataFrame) -> DataFrame:
    """``weight`` so both classes weigh the same in total (n / (2 n_class))."""
    counts = {row[LABEL]: row["n"] for row in train.groupBy(LABEL).agg(F.count(F.lit(1)).alias("n")).collect()}
    total = sum(counts.values())
    w = {label: total / (2.0 * n) for label, n in counts.items()}
    return train.withColumn("weight", F.when(F.col(LABEL) == 1.0, F.lit(w.get(1.0, 1.0))).otherwise(F.lit(w.get(0.0, 1.0))))


def _classifier(kind: str, seed: int, weighted: bool):
    common: dict[str, Any] = {"featuresCol": "features", "labelCol": LABEL}
    if weighted:
        common["weightCol"] = "weight"
    if kind == "logistic_regression":
        return LogisticRegression(maxIter=100, **common)
    if kind == "random_forest":
        return RandomForestClassifier(seed=seed, **common)
    if kind == "gbt":
        return GBTClassifier(seed=seed, **common)
    raise ValueError(f"models.churn.candidates: unknown model {kind!r} (logistic_regression, random_forest, gbt)")


def with_params(estimator, params: dict[str, Any], key: str):
    """``estimator`` with ``params`` set by their MLlib names; an unknown name fails naming ``key``."""
    for name, value in params.items():
        if not estimator.hasParam(name):
            raise ValueError(f"{key}: {name!r} is not a parameter of {type(estimator).__name__}")
        estimator.set(estimator.getParam(name), value)
    return estimator


def pipeline(kind: str, features: list[str], params: dict[str, Any], seed: int, weighted: bool) -> Pipeline:
    """Assemble -> standardise -> classifier with ``params`` set (names as in MLlib)."""
    clf = with_params(_classifier(kind, seed, weighted), params, f"models.churn.candidates.{kind}")
    return Pipeline(stages=[VectorAssembler(inputCols=features, outputCol="_raw"),
                            StandardScaler(inputCol="_raw", outputCol="features", withMean=True, withStd=True), clf])


def grid(candidates: dict[str, dict[str, list[Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Every (model type, parameter map) of the configured grids."""
    out = []
    for kind, params in candidates.items():
        names = sorted(params)
        for values in itertools.product(*[params[n] for n in names]):
            out.append((kind, dict(zip(names, values, strict=True))))
    return out


def evaluate(scored: DataFrame, metric: str, score: str = "p") -> float:
    """ROC or PR area of ``score`` (any double, higher = more likely churned) against the label."""
    evaluator = BinaryClassificationEvaluator(rawPredictionCol=score, labelCol=LABEL, metricName=metric)
    return float(evaluator.evaluate(scored.select(F.col(score).cast("double").alias(score), LABEL)))


def score(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """``frame`` plus ``p`` = P(churn)."""
    return model.transform(frame).select(*frame.columns, probability().alias("p"))


@dataclass
class Candidate:
    kind: str
    params: dict[str, Any]
    model: PipelineModel
    validation: float


def fit(kind: str, params: dict[str, Any], train: DataFrame, features: list[str], cfg: ChurnSettings) -> PipelineModel:
    """One candidate fitted on ``train`` (class weights from its own label counts when configured)."""
    rows = with_weights(train) if cfg.class_weights else train
    return pipeline(kind, features, params, cfg.seed, cfg.class_weights).fit(rows)


def tune(train: DataFrame, validation: DataFrame, features: list[str], cfg: ChurnSettings) -> list[Candidate]:
    """Fit every candidate on ``train`` and score it on ``validation``; best first."""
    points = grid(cfg.candidates)

    def fit_one(point: tuple[str, dict[str, Any]]) -> Candidate:
        kind, params = point
        model = fit(kind, params, train, features, cfg)
        value = evaluate(score(model, validation), cfg.metric)
        log.info("churn candidate %s %s: validation %s %.4f", kind, params, cfg.metric, value)
        return Candidate(kind, params, model, value)

    with ThreadPool(min(cfg.parallelism, len(points))) as pool:
        done = pool.map(inheritable_thread_target(train.sparkSession)(fit_one), points)
    # Stable order on ties: the configured order (simpler models are listed first).
    return sorted(done, key=lambda c: -c.validation)


def bucket_counts(scored: DataFrame) -> np.ndarray:
    """(BUCKETS + 1) x 3 array: per probability bucket, [sum of p, positives, negatives]."""
    bucket = F.least(F.floor(F.col("p") * BUCKETS), F.lit(BUCKETS)).cast("int")
    rows = scored.groupBy(bucket.alias("b")).agg(
        F.sum("p").alias("sp"), F.sum(F.col(LABEL)).alias("pos"), F.sum(1.0 - F.col(LABEL)).alias("neg")).collect()
    out = np.zeros((BUCKETS + 1, 3))
    for r in rows:
        out[r["b"]] = (r["sp"], r["pos"], r["neg"])
    return out


def curves(counts: np.ndarray) -> dict[str, np.ndarray]:
    """ROC and PR points and F1 per threshold (thresholds from high to low bucket edges)."""
    pos, neg = counts[::-1, 1], counts[::-1, 2]
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    p_total, n_total = max(pos.sum(), 1e-12), max(neg.sum(), 1e-12)
    recall = tp / p_total
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    thresholds = np.arange(BUCKETS, -1, -1) / BUCKETS
    return {"threshold": thresholds, "tpr": recall, "fpr": fp / n_total, "precision": precision,
            "recall": recall, "f1": f1}


def calibration(counts: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted probability vs observed churn rate in ``bins`` equal-width probability bins."""
    edges = np.linspace(0, BUCKETS + 1, bins + 1).astype(int)
    out = []
    for i in range(bins):
        block = counts[edges[i]:edges[i + 1]]
        n = block[:, 1].sum() + block[:, 2].sum()
        out.append({"bin": i + 1, "lower": i / bins, "upper": (i + 1) / bins, "persons": float(n),
                    "mean_predicted": float(block[:, 0].sum() / n) if n else float("nan"),
                    "observed_rate": float(block[:, 1].sum() / n) if n else float("nan")})
    return out


@dataclass(frozen=True)
class Threshold:
    """Who a churn model flags: the riskiest ``share`` of the scored population (a rank rule, as
    campaigns use it), or everyone at or above a fixed ``probability``.

    A rank rule is carried from validation to test (and to scoring) as a share, not as the
    probability it meant on validation: scores shift between dates, and a probability cut taken
    from one date can flag nobody on the next.
    """

    share: float | None = None
    probability: float | None = None

    def cut(self, scored: DataFrame) -> float:
        """The probability cut on ``scored``: its ``1 - share`` quantile, or the fixed probability."""
        if self.share is None:
            return float(self.probability)
        quantile = scored.approxQuantile("p", [1.0 - self.share], 0.001)
        return float(quantile[0]) if quantile else 1.0


def choose_threshold(validation_scored: DataFrame, rule: str) -> Threshold:
    """The flagging rule from the validation split: top decile (rank), max F1 (the share of the
    population flagged at validation's best F1, as a rank rule), or a fixed probability."""
    if rule == "top_decile":
        return Threshold(share=0.1)
    if rule == "max_f1":
        counts = bucket_counts(validation_scored)
        c = curves(counts)
        best = int(np.argmax(c["f1"]))
        flagged = counts[::-1, 1:].sum(axis=1).cumsum()[best]
        return Threshold(share=float(flagged / max(counts[:, 1:].sum(), 1.0)))
    return Threshold(probability=float(rule))


def test_report(test_scored: DataFrame, threshold: Threshold) -> dict[str, float]:
    """Metrics of one scored split: AUCs, precision/recall/F1 of the flagged persons, top-decile lift."""
    cut = threshold.cut(test_scored)
    agg = test_scored.agg(
        F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("pos"),
        F.sum(F.when(F.col("p") >= cut, F.col(LABEL))).alias("tp"),
        F.count(F.when(F.col("p") >= cut, 1)).alias("flagged")).first()
    n, pos, tp, flagged = agg["n"], agg["pos"] or 0.0, agg["tp"] or 0.0, agg["flagged"]
    precision = tp / flagged if flagged else 0.0
    recall = tp / pos if pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    q90 = Threshold(share=0.1).cut(test_scored)
    top = test_scored.where(F.col("p") >= q90).agg(F.avg(LABEL).alias("rate"), F.count(F.lit(1)).alias("n")).first()
    base_rate = pos / n if n else 0.0
    return {
        **{key: evaluate(test_scored, metric) for metric, key in REPORT_KEY.items()},
        "threshold": cut, "flagged_share": flagged / n if n else 0.0,
        "precision": precision, "recall": recall, "f1": f1,
        "churn_rate": base_rate, "top_decile_lift": (top["rate"] / base_rate) if base_rate and top["rate"] is not None else 0.0,
        "top_decile_share": top["n"] / n if n else 0.0, "rows": float(n),
    }


def importances(model: PipelineModel, features: list[str]) -> list[tuple[str, float]]:
    """Feature importances (trees) or |coefficients| on standardised features (logistic), summing to 1."""
    clf = model.stages[-1]
    if hasattr(clf, "featureImportances"):
        values = clf.featureImportances.toArray()
    else:
        values = np.abs(clf.coefficients.toArray())
    total = values.sum() or 1.0
    return sorted(((f, float(v / total)) for f, v in zip(features, values, strict=True)), key=lambda fv: -fv[1])


