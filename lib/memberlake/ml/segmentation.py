"""Behavioural segments: MLlib clustering with k chosen by silhouette, cluster profiles, personas.

Features are log1p-transformed where configured (spend and counts are heavy-tailed: without it
one cluster holds the top spenders and another everyone else), assembled and standardised in
one Pipeline with the clusterer, so the fitted PipelineModel scores raw feature rows.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.settings import SegmentationSettings

log = logging.getLogger(__name__)

# Words for a feature well above / below the population mean (persona labels).
DESCRIPTORS: dict[str, tuple[str, str]] = {
    "recency_days": ("lapsing", "recently active"),
    "orders_365d": ("frequent", "occasional"),
    "spend_365d": ("high-spending", "low-spending"),
    "avg_order_value": ("big-basket", "small-basket"),
    "category_breadth": ("broad", "narrow"),
    "discount_share": ("deal-seeking", "full-price"),
    "tenure_days": ("long-standing", "new"),
    "sessions_90d": ("engaged online", "offline"),
    "orders_30d": ("buying now", "quiet this month"),
    "overdue_ratio": ("overdue", "on rhythm"),
}


@dataclass
class SegmentFit:
    model: PipelineModel
    k: int
    silhouettes: dict[int, float]
    costs: dict[int, float] = field(default_factory=dict)


def _prepare(cfg: SegmentationSettings) -> list:
    logged = set(cfg.log_features)
    select = ", ".join(f"log1p(greatest(`{c}`, 0D)) AS `_x_{c}`" if c in logged else f"CAST(`{c}` AS DOUBLE) AS `_x_{c}`"
                       for c in cfg.features)
    return [
        SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__"),
        VectorAssembler(inputCols=[f"_x_{c}" for c in cfg.features], outputCol="_raw", handleInvalid="keep"),
        # Scaled, not centred: distances do not change, and BisectingKMeans cannot split a cluster
        # whose centre is the origin (its split perturbs the centre in proportion to its norm).
        StandardScaler(inputCol="_raw", outputCol="features", withMean=False, withStd=True),
    ]


def _clusterer(cfg: SegmentationSettings, k: int):
    if cfg.algorithm == "bisecting_kmeans":
        return BisectingKMeans(k=k, seed=cfg.seed, maxIter=cfg.max_iter, predictionCol="cluster")
    if cfg.algorithm == "gaussian_mixture":
        return GaussianMixture(k=k, seed=cfg.seed, maxIter=cfg.max_iter, predictionCol="cluster")
    return KMeans(k=k, seed=cfg.seed, maxIter=cfg.max_iter, predictionCol="cluster", initMode="k-means||")


def _cost(model: PipelineModel) -> float:
    stage = model.stages[-1]
    summary = stage.summary
    if hasattr(summary, "trainingCost"):
        return float(summary.trainingCost)
    return -float(summary.logLikelihood)      # Gaussian mixture: lower is better too


def fit_segments(frame: DataFrame, cfg: SegmentationSettings) -> SegmentFit:
    """Fit k in [k_min, k_max] on (a sample of) ``frame``; keep the best silhouette.

    Ties go to the smaller k. k above the number of distinct rows is not tried.
    """
    rows = frame.count()
    sample = frame.sample(fraction=min(1.0, cfg.max_fit_rows / max(rows, 1)), seed=cfg.seed) if rows > cfg.max_fit_rows else frame
    prepared = Pipeline(stages=_prepare(cfg)).fit(sample)
    data = prepared.transform(sample).select("features").localCheckpoint()
    evaluator = ClusteringEvaluator(featuresCol="features", predictionCol="cluster", distanceMeasure="squaredEuclidean")
    silhouettes: dict[int, float] = {}
    costs: dict[int, float] = {}
    models: dict[int, PipelineModel] = {}
    for k in range(cfg.k_min, min(cfg.k_max, rows - 1) + 1):
        fitted = _clusterer(cfg, k).fit(data)
        assigned = fitted.transform(data)
        if assigned.select("cluster").distinct().count() < 2:
            log.info("k=%d: fewer than two clusters assigned, skipped", k)
            continue
        silhouettes[k] = float(evaluator.evaluate(assigned))
        whole = PipelineModel(stages=[*prepared.stages, fitted])
        costs[k] = _cost(whole)
        models[k] = whole
        log.info("segmentation %s k=%d: silhouette %.4f, cost %.1f", cfg.algorithm, k, silhouettes[k], costs[k])
    if not silhouettes:
        raise ValueError("segmentation: no k in the configured range gives two or more clusters "
                         f"({rows} persons); lower models.segmentation.k_min or add data")
    best = max(silhouettes, key=lambda k: (round(silhouettes[k], 6), -k))
    return SegmentFit(models[best], best, silhouettes, costs)


def assign(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """``frame`` plus ``cluster`` (int), without the pipeline's working columns."""
    out = model.transform(frame)
    return out.select(*frame.columns, F.col("cluster").cast("int").alias("cluster"))


def cluster_profile(assigned: DataFrame, features: list[str]) -> DataFrame:
    """(cluster, persons, share, feature, mean, population_mean, population_std, z): one row per
    cluster and feature; ``z`` is how many population standard deviations the cluster's mean sits
    from the population's."""
    stats = [F.avg(c).alias(f"m_{c}") for c in features]
    population = assigned.agg(F.count(F.lit(1)).alias("_total"), *stats,
                              *[F.stddev_pop(c).alias(f"s_{c}") for c in features])
    per = assigned.groupBy("cluster").agg(F.count(F.lit(1)).alias("persons"), *stats)
    long = per.crossJoin(population.withColumnsRenamed({f"m_{c}": f"p_{c}" for c in features})).select(
        "cluster", "persons", (F.col("persons") / F.col("_total")).alias("share"),
        F.explode(F.array(*[F.struct(F.lit(c).alias("feature"), F.col(f"m_{c}").alias("mean"),
                                     F.col(f"p_{c}").alias("population_mean"), F.col(f"s_{c}").alias("population_std"))
                            for c in features])).alias("f"))
    return long.select("cluster", "persons", "share", "f.feature", "f.mean", "f.population_mean", "f.population_std",
                       F.coalesce(F.try_divide(F.col("f.mean") - F.col("f.population_mean"), F.col("f.population_std")),
                                  F.lit(0.0)).alias("z"))


def personas(profile_rows: list[dict], top: int = 2, min_z: float = 0.25) -> dict[int, str]:
    """A readable label per cluster from its strongest deviations, e.g. "frequent, high-spending".

    ``profile_rows`` is the collected cluster profile (clusters x features: small). Features
    without a descriptor use their name; a cluster with no |z| >= ``min_z`` is "typical".
    Clusters that would share a label get a numeric suffix.
    """
    by_cluster: dict[int, list[dict]] = {}
    for row in profile_rows:
        by_cluster.setdefault(int(row["cluster"]), []).append(row)
    labels: dict[int, str] = {}
    for cluster, rows in sorted(by_cluster.items()):
        strong = sorted((r for r in rows if abs(r["z"]) >= min_z), key=lambda r: -abs(r["z"]))[:top]
        words = []
        for r in strong:
            high, low = DESCRIPTORS.get(r["feature"], (f"high {r['feature']}", f"low {r['feature']}"))
            words.append(high if r["z"] > 0 else low)
        labels[cluster] = ", ".join(words) if words else "typical"
    seen: dict[str, int] = {}
    for cluster in sorted(labels):
        name = labels[cluster]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            labels[cluster] = f"{name} ({seen[name]})"
    return labels
