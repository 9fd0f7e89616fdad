"""Segmentation: k by silhouette on planted clusters, seeds, profiles and persona labels by hand."""
from __future__ import annotations

import numpy as np
import pytest

from memberlake.ml.segmentation import assign, cluster_profile, fit_segments, personas
from memberlake.settings import SegmentationSettings

FEATURES = ["orders_365d", "spend_365d"]


def _blobs(spark, n_per=60, seed=5):
    """Three well separated groups in (orders, spend)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, (orders, spend) in enumerate([(1, 50), (10, 500), (40, 5000)]):
        for i in range(n_per):
            rows.append((f"g{g}-{i}", float(rng.normal(orders, orders * 0.05)), float(rng.normal(spend, spend * 0.05)), g))
    return spark.createDataFrame(rows, "person_id string, orders_365d double, spend_365d double, truth int")


# kmeans in the default suite; the other two (~13 s together) in the extended tier
@pytest.mark.parametrize("algorithm", ["kmeans", pytest.param("bisecting_kmeans", marks=pytest.mark.extended),
                                       pytest.param("gaussian_mixture", marks=pytest.mark.extended)])
def test_k_is_chosen_by_silhouette_and_recovers_planted_groups(spark, algorithm):
    frame = _blobs(spark)
    cfg = SegmentationSettings(algorithm=algorithm, k_min=2, k_max=4, features=FEATURES, log_features=FEATURES, seed=3)
    fit = fit_segments(frame, cfg)
    assert set(fit.silhouettes) <= {2, 3, 4} and 3 in fit.silhouettes
    assert fit.k == 3 and fit.silhouettes[3] == max(fit.silhouettes.values())
    assigned = assign(fit.model, frame)
    assert assigned.columns == [*frame.columns, "cluster"]
    # each planted group lands in exactly one cluster, and the clusters differ
    pairs = assigned.select("truth", "cluster").distinct().collect()
    assert len(pairs) == 3 and len({p["cluster"] for p in pairs}) == 3


def test_fixed_seed_is_reproducible(spark):
    frame = _blobs(spark, seed=9)
    cfg = SegmentationSettings(k_min=2, k_max=3, features=FEATURES, log_features=[], seed=11)
    a, b = fit_segments(frame, cfg), fit_segments(frame, cfg)
    assert a.k == b.k and a.silhouettes == pytest.approx(b.silhouettes)
    left = [r["cluster"] for r in assign(a.model, frame).orderBy("person_id").collect()]
    right = [r["cluster"] for r in assign(b.model, frame).orderBy("person_id").collect()]
    assert left == right


def test_cluster_profile_by_hand(spark):
    # cluster 0: spend 10, 20; cluster 1: spend 60. Population mean 30, std sqrt(((20)^2+(10)^2+(30)^2)/3).
    assigned = spark.createDataFrame([("a", 10.0, 0), ("b", 20.0, 0), ("c", 60.0, 1)],
                                     "person_id string, spend_365d double, cluster int")
    rows = {r["cluster"]: r.asDict() for r in cluster_profile(assigned, ["spend_365d"]).collect()}
    std = np.sqrt((400 + 100 + 900) / 3)
    assert rows[0]["persons"] == 2 and rows[0]["share"] == pytest.approx(2 / 3)
    assert rows[0]["mean"] == 15 and rows[0]["population_mean"] == 30
    assert rows[0]["z"] == pytest.approx(-15 / std) and rows[1]["z"] == pytest.approx(30 / std)


def test_personas_from_the_strongest_deviations():
    rows = [
        {"cluster": 0, "feature": "spend_365d", "z": 1.5}, {"cluster": 0, "feature": "orders_365d", "z": 0.9},
        {"cluster": 0, "feature": "recency_days", "z": -0.1},
        {"cluster": 1, "feature": "spend_365d", "z": -0.2}, {"cluster": 1, "feature": "recency_days", "z": 1.1},
        {"cluster": 2, "feature": "spend_365d", "z": 0.1}, {"cluster": 2, "feature": "recency_days", "z": -0.1},
        {"cluster": 3, "feature": "spend_365d", "z": 0.0}, {"cluster": 3, "feature": "recency_days", "z": 0.05},
        {"cluster": 4, "feature": "mystery", "z": -2.0},
    ]
    assert personas(rows) == {0: "high-spending, frequent", 1: "lapsing", 2: "typical", 3: "typical (2)",
                              4: "low mystery"}
