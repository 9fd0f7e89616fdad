"""Uplift models: who does a campaign move? Learned from randomised campaigns' contacts.

Training rows are ``campaign_outcomes`` of campaigns with a control group (treated = any
non-control variant), with the point-in-time features of :mod:`memberlake.ml.features` on the
day before the campaign's first send (a contact who had no order in ``active_days`` gets the
neutral values and ``has_history`` 0). Contacts are split by a hash of (campaign, person) into
training, validation and test rows. Two learners, each with every configured MLlib classifier:

- **T-learner**: one classifier on treated rows, one on control rows, over the same assembled
  and standardised features; uplift = P(y | treated, x) - P(y | control, x).
- **Class transformation** (Jaskowski & Jaroszewicz 2012): z = 1 when (treated and responded)
  or (control and did not); with the arms weighted to equal totals, uplift = 2 P(z = 1 | x) - 1.

Both are one MLlib ``PipelineModel`` (the T-learner's holds both classifiers), so the registry
keeps one artifact. The candidate with the best validation Qini coefficient is evaluated once on
the test rows beside two baselines (a random order; the churn champion's risk, else recency as
the churn-risk proxy) and registered; it becomes ``champion`` when its test Qini beats the
champion's on the same rows.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.exprs import unit_hash
from memberlake.ml import uplift_metrics as um
from memberlake.ml.churn import with_params
from memberlake.settings import UpliftSettings

log = logging.getLogger(__name__)

HISTORY = "has_history"
# Where a classifier writes its probability: T-learner treated / control, class transformation.
TREATED_P, CONTROL_P, TRANSFORMED_P = "_p_treated", "_p_control", "_p_transformed"


def training_rows(outcomes: DataFrame, outcome: str, campaigns: list[str]) -> DataFrame:
    """(campaign_id, person_id, feature_date, w, y) of campaigns that have both arms."""
    rows = outcomes if not campaigns else outcomes.where(F.col("campaign_id").isin(campaigns))
    arms = rows.groupBy("campaign_id").agg(F.countDistinct("is_control").alias("_arms"),
                                           F.min("contacted_at").alias("_first"))
    both = arms.where(F.col("_arms") == 2).select("campaign_id", F.date_sub(F.to_date("_first"), 1).alias("feature_date"))
    return rows.join(F.broadcast(both), "campaign_id").select(
        "campaign_id", "person_id", "feature_date", (~F.col("is_control")).cast("int").alias("w"),
        (F.col(outcome) > 0).cast("int").alias("y"))


def with_features(rows: DataFrame, feats: DataFrame, names: list[str], active_days: int) -> DataFrame:
    """``rows`` with the features at their ``feature_date``; persons outside the feature
    population (no order in ``active_days``) get neutral values and ``has_history`` 0."""
    joined = rows.join(feats.withColumnRenamed("as_of_date", "feature_date").withColumn(HISTORY, F.lit(1.0)),
                       ["person_id", "feature_date"], "left")
    neutral = {n: 0.0 for n in names} | {"recency_days": float(active_days), "days_since_last_session": float(active_days),
                                         HISTORY: 0.0}
    return joined.fillna({k: v for k, v in neutral.items() if k in joined.columns})


def split(rows: DataFrame, cfg: UpliftSettings) -> dict[str, DataFrame]:
    """Training / validation / test rows by a seeded hash of (campaign, person)."""
    tagged = rows.withColumn("_u", unit_hash(F.lit(str(cfg.seed)), "campaign_id", "person_id"))
    test_cut = cfg.test_fraction
    valid_cut = test_cut + (1 - test_cut) * cfg.validation_fraction
    return {"test": tagged.where(F.col("_u") < test_cut).drop("_u"),
            "validation": tagged.where((F.col("_u") >= test_cut) & (F.col("_u") < valid_cut)).drop("_u"),
            "train": tagged.where(F.col("_u") >= valid_cut).drop("_u")}


def _classifier(kind: str, params: dict[str, Any], label: str, probability: str, seed: int, weight: str | None):
    clf = LogisticRegression(maxIter=100) if kind == "logistic_regression" else GBTClassifier(seed=seed)
    outputs = {"featuresCol": "features", "labelCol": label, "probabilityCol": probability,
               "rawPredictionCol": f"{probability}_raw", "predictionCol": f"{probability}_label"}
    if weight:
        outputs["weightCol"] = weight
    # set, not passed: GBTClassifier's constructor does not take every output column
    return with_params(with_params(clf, outputs, "uplift outputs"), params, f"models.uplift.classifiers.{kind}")


def fit(learner: str, kind: str, params: dict[str, Any], train: DataFrame, names: list[str], seed: int) -> PipelineModel:
    """One uplift model (assemble, standardise, the learner's classifier(s)) fitted on ``train``."""
    assemble = VectorAssembler(inputCols=names, outputCol="_raw")
    scaler = StandardScaler(inputCol="_raw", outputCol="features", withMean=True, withStd=True).fit(assemble.transform(train))
    prepared = scaler.transform(assemble.transform(train)).cache()
    try:
        if learner == "t_learner":
            treated = _classifier(kind, params, "y", TREATED_P, seed, None).fit(prepared.where("w = 1"))
            control = _classifier(kind, params, "y", CONTROL_P, seed, None).fit(prepared.where("w = 0"))
            return PipelineModel(stages=[assemble, scaler, treated, control])
        share = prepared.agg(F.avg("w")).first()[0]
        weighted = prepared.select(
            "*", F.when((F.col("y") == 1) == (F.col("w") == 1), 1.0).otherwise(0.0).alias("_z"),
            F.when(F.col("w") == 1, 0.5 / share).otherwise(0.5 / (1 - share)).alias("_weight"))
        transformed = _classifier(kind, params, "_z", TRANSFORMED_P, seed, "_weight").fit(weighted)
        return PipelineModel(stages=[assemble, scaler, transformed])
    finally:
        prepared.unpersist()


def _p(col: str) -> Column:
    return vector_to_array(F.col(col))[1]


def score(model: PipelineModel, frame: DataFrame, out: str = "uplift") -> DataFrame:
    """``frame`` plus the model's predicted uplift (either learner, told apart by its stages)."""
    scored = model.transform(frame)
    if TRANSFORMED_P in scored.columns:
        uplift = 2 * _p(TRANSFORMED_P) - 1
    else:
        uplift = _p(TREATED_P) - _p(CONTROL_P)
    return scored.select(*frame.columns, uplift.alias(out))


def evaluation(scored: DataFrame, column: str, k: float) -> dict[str, float]:
    """Qini coefficient, normalised AUUC and uplift@k of ``column`` on ``scored`` (y, w)."""
    return {"qini": um.qini_coefficient(scored, column), "auuc": um.uplift_auc(scored, column),
            f"uplift_at_{int(round(k * 100))}": um.uplift_at_k(scored, column, k)}


@dataclass
class Candidate:
    learner: str
    kind: str
    model: PipelineModel
    validation_qini: float

    @property
    def name(self) -> str:
        return f"{self.learner} {self.kind}"


def tune(parts: dict[str, DataFrame], names: list[str], cfg: UpliftSettings) -> list[Candidate]:
    """Every learner x classifier fitted on the training rows, best validation Qini first."""
    out = []
    for learner in cfg.learners:
        for kind, params in cfg.classifiers.items():
            model = fit(learner, kind, params, parts["train"], names, cfg.seed)
            qini = um.qini_coefficient(score(model, parts["validation"]), "uplift")
            log.info("uplift candidate %s %s: validation Qini %.4f", learner, kind, qini)
            out.append(Candidate(learner, kind, model, qini))
    return sorted(out, key=lambda c: -(c.validation_qini if c.validation_qini == c.validation_qini else -1e9))


def feature_dates(rows: DataFrame) -> list[date]:
    """The distinct feature dates of the training rows (one per campaign: a few)."""
    return sorted(r.feature_date for r in rows.select("feature_date").distinct().collect())


def deciles_frame(spark, model: str, deciles: list[um.Decile]) -> DataFrame:
    return spark.createDataFrame(
        [(model, d.decile, d.n_treatment, d.n_control, d.response_rate_treatment, d.response_rate_control, d.uplift)
         for d in deciles],
        "model string, decile int, n_treatment bigint, n_control bigint, response_rate_treatment double, "
        "response_rate_control double, uplift double")


def population_deciles(scored: DataFrame, column: str = "uplift") -> DataFrame:
    """``scored`` plus ``decile`` (1 = the highest predicted uplift) from approximate quantiles, so
    scoring every person needs no global sort."""
    cuts = scored.approxQuantile(column, [i / 10 for i in range(1, 10)], 0.001)
    above = sum((F.col(column) > F.lit(c)).cast("int") for c in cuts) if cuts else F.lit(0)
    return scored.withColumn("decile", (F.lit(10) - above).cast("int"))
