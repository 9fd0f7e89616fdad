"""BTYD churn features: the in-memory fit equals the Spark fit, every as-of date is fitted only on
its own past, and the BG/NBD-only baseline ranks by fewer expected purchases."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from memberlake import btyd
from memberlake.ml import btyd_features
from memberlake.ml.features import as_of_frame, feature_names
from memberlake.ml.training import btyd_only
from memberlake.settings import ModelSettings
from memberlake.value import clv

START = date(2024, 1, 1)


def _bgnbd_purchases(n: int, seed: int, days: int) -> list[tuple[str, date]]:
    """Purchase days of ``n`` persons from a BG/NBD process (daily rate λ ~ Gamma(0.8, 1/10),
    drop-out chance after each repeat p ~ Beta(1.2, 3)), each starting in the first quarter."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lam, p = rng.gamma(0.8, 1 / 10.0), rng.beta(1.2, 3.0)
        t = float(rng.integers(0, 90))
        rows.append((f"P{i}", START + timedelta(days=int(t))))
        while True:
            t += rng.exponential(1 / lam)
            if t > days - 1:
                break
            rows.append((f"P{i}", START + timedelta(days=int(t))))
            if rng.random() < p:
                break
    return rows


@pytest.fixture(scope="module")
def purchases(spark):
    rows = _bgnbd_purchases(1500, 5, 400)
    return spark.createDataFrame(rows, "person_id string, order_date date").withColumn("net", F.lit(10.0)).cache()


def _summary(rows: list[tuple[str, date]], as_of: date) -> pd.DataFrame:
    """The BTYD summary by hand in pandas: purchase days up to ``as_of``."""
    df = pd.DataFrame(rows, columns=["person_id", "order_date"]).drop_duplicates()
    df = df[df["order_date"] <= as_of]
    per = df.groupby("person_id")["order_date"].agg(["min", "max", "count"])
    return pd.DataFrame({"frequency": per["count"] - 1.0,
                         "recency": [(b - a).days for a, b in zip(per["min"], per["max"], strict=True)],
                         "T": [(as_of - a).days for a in per["min"]]}, index=per.index).astype(float)


@pytest.mark.extended
def test_in_memory_fit_equals_the_spark_fit(spark, purchases):
    as_of = START + timedelta(days=300)
    summary = btyd.btyd_summary(purchases, as_of)
    spark_fit = clv.fit_transactions(summary, "bgnbd")
    local = _summary(_bgnbd_purchases(1500, 5, 400), as_of)
    counts = local.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    params, ll, converged = btyd.fit_counts("bgnbd", counts["frequency"], counts["recency"], counts["T"], counts["n"])
    assert converged
    assert ll == pytest.approx(spark_fit.log_likelihood, rel=1e-9)
    for k in ("r", "alpha", "a", "b"):
        assert params[k] == pytest.approx(spark_fit.params[k], rel=1e-4), k


def test_each_date_is_fitted_and_scored_on_its_own_past(spark, purchases):
    rows = _bgnbd_purchases(1500, 5, 400)
    early, late = START + timedelta(days=200), START + timedelta(days=330)
    out = btyd_features.btyd_features(purchases, as_of_frame(spark, [early, late]), "bgnbd", 90).toPandas()
    for as_of in (early, late):
        local = _summary(rows, as_of)
        counts = local.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
        params, _, _ = btyd.fit_counts("bgnbd", counts["frequency"], counts["recency"], counts["T"], counts["n"])
        values = [params[k] for k in ("r", "alpha", "a", "b")]
        got = out[out["as_of_date"] == as_of].set_index("person_id").loc[local.index]
        # every person with a purchase up to the date, nobody whose first purchase is later
        assert len(out[out["as_of_date"] == as_of]) == len(local)
        x, tx, T = (local[c].to_numpy() for c in ("frequency", "recency", "T"))
        np.testing.assert_allclose(got["btyd_p_alive"], btyd.bgnbd_p_alive(x, tx, T, *values), rtol=1e-6)
        np.testing.assert_allclose(got["btyd_expected_purchases"], btyd.bgnbd_expected(90.0, x, tx, T, *values),
                                   rtol=1e-6)
    # later purchases do not move an earlier date's features
    earlier_only = purchases.where(purchases.order_date <= early)
    again = btyd_features.btyd_features(earlier_only, as_of_frame(spark, [early]), "bgnbd", 90).toPandas()
    merged = again.merge(out[out["as_of_date"] == early], on="person_id", suffixes=("", "_all"))
    assert len(merged) == len(again)
    np.testing.assert_allclose(merged["btyd_p_alive"], merged["btyd_p_alive_all"], rtol=1e-6)


def test_a_single_buyer_per_date_gives_finite_or_neutral_features(spark):
    """Too little history to fit: the features are finite or null (never NaN or infinite), and
    ``features`` fills what is missing with the neutral values."""
    one = spark.createDataFrame([("A", START, 10.0)], "person_id string, order_date date, net double")
    out = btyd_features.btyd_features(one, as_of_frame(spark, [START + timedelta(days=10)]), "bgnbd", 90).collect()
    assert len(out) == 1
    for value in (out[0]["btyd_p_alive"], out[0]["btyd_expected_purchases"]):
        assert value is None or np.isfinite(value)


def test_feature_names_follow_the_btyd_model_setting():
    assert feature_names(ModelSettings())[-2:] == ["btyd_p_alive", "btyd_expected_purchases"]
    assert "btyd_p_alive" not in feature_names(ModelSettings(btyd_model="none"))


def test_btyd_only_baseline_ranks_fewer_expected_purchases_as_churn(spark):
    # churned persons expect 0.1 and 0.5 purchases, stayers 0.3 and 2.0: of the four
    # (churner, stayer) pairs three are ordered right -> ROC AUC 0.75
    test = spark.createDataFrame([(1.0, 0.1), (1.0, 0.5), (0.0, 0.3), (0.0, 2.0)],
                                 "churned double, btyd_expected_purchases double")
    name, auc = btyd_only(test, "bgnbd", ["recency_days", "btyd_expected_purchases"])
    assert name == "bgnbd_only" and auc == pytest.approx(0.75)
    assert btyd_only(test, "none", ["recency_days"])[0] is None
