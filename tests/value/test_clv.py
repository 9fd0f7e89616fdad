"""CLV: the BTYD summary, the special functions, and both fits against single-node references.

The references are written independently of the Spark code: per-person log-likelihoods with
scipy's gammaln, maximised with Nelder-Mead on the raw rows (the Spark fit aggregates distinct
combinations and uses analytic gradients with L-BFGS-B).
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from pyspark.sql import functions as F
from scipy.optimize import minimize
from scipy.special import gammaln

from memberlake.value import clv


def test_btyd_summary_matches_lifetimes_definitions(spark):
    # P1: Jan 1 (10 + 5, one purchase day), Jan 11 (20), Jan 31 (40); as of Feb 10
    #   frequency 2 repeat days, recency 30, T 40, monetary (20 + 40) / 2 = 30
    # P2: one purchase on Feb 1 -> frequency 0, recency 0, T 9, monetary 0; P3 buys after the as-of date
    rows = [("P1", date(2024, 1, 1), 10.0), ("P1", date(2024, 1, 1), 5.0), ("P1", date(2024, 1, 11), 20.0),
            ("P1", date(2024, 1, 31), 40.0), ("P2", date(2024, 2, 1), 7.0), ("P3", date(2024, 2, 11), 9.0)]
    df = spark.createDataFrame(rows, "person_id string, order_date date, net double")
    got = {r.person_id: (r.frequency, r.recency, r.T, r.monetary_value)
           for r in clv.btyd_summary(df, date(2024, 2, 10)).collect()}
    assert got == {"P1": (2.0, 30.0, 40.0, 30.0), "P2": (0.0, 0.0, 9.0, 0.0)}


def _simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int = 11):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lam, p, T = rng.gamma(r, 1 / alpha), rng.beta(a, b), float(rng.uniform(60, 400))
        t, x, tx = 0.0, 0, 0.0
        while True:
            t += rng.exponential(1 / lam)
            if t > T:
                break
            x, tx = x + 1, t
            if rng.random() < p:
                break
        rows.append((f"P{i}", float(x), round(tx, 3), T))
    return rows


def _reference_bgnbd_ll(params, x, tx, T):
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _reference_fit(ll, data, x0):
    result = minimize(lambda lp: -np.sum(ll(np.exp(lp), *data)), np.log(x0), method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000, "maxfev": 20000})
    return np.exp(result.x), -result.fun


@pytest.fixture(scope="module")
def bgnbd_data(spark):
    rows = _simulate_bgnbd(3000, r=0.5, alpha=20.0, a=0.8, b=2.5)
    return rows, spark.createDataFrame(rows, "person_id string, frequency double, recency double, T double")


def test_bgnbd_log_likelihood_and_gradient_match_the_reference(spark, bgnbd_data):
    rows, df = bgnbd_data
    x, tx, T = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    params = np.array([0.7, 15.0, 1.2, 3.0])
    data = df.groupBy("frequency", "recency", "T").agg(F.count(F.lit(1)).alias("n"))
    got = clv.spark_sums(data, ["frequency", "recency", "T"], clv.bgnbd_partials, params, 5)   # on the executors
    assert got[0] == pytest.approx(np.sum(_reference_bgnbd_ll(params, x, tx, T)), rel=1e-9)
    for i in range(4):     # analytic gradient against central differences of the reference likelihood
        step = params.copy()
        h = 1e-5 * step[i]
        step[i] += h
        up = np.sum(_reference_bgnbd_ll(step, x, tx, T))
        step[i] -= 2 * h
        down = np.sum(_reference_bgnbd_ll(step, x, tx, T))
        assert got[i + 1] == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_driver_and_spark_sums_agree_and_the_row_cap_picks_the_path(spark, bgnbd_data):
    """A fit's sums are evaluated on the driver up to ``driver_rows`` distinct rows, by Spark
    above: both give the same log-likelihood and gradient at every point (the fits below run on
    the driver; this ties them to the Spark path used at scale)."""
    _, df = bgnbd_data
    cols = ["frequency", "recency", "T"]
    data = df.groupBy(*cols).agg(F.count(F.lit(1)).alias("n")).cache()
    distinct = data.count()
    points = [np.array([0.7, 15.0, 1.2, 3.0]), np.array([0.4, 25.0, 0.6, 2.0])]
    on_driver, where_driver = clv._evaluators(data, cols, clv.bgnbd_partials, 5, driver_rows=distinct)
    on_spark, where_spark = clv._evaluators(data, cols, clv.bgnbd_partials, 5, driver_rows=distinct - 1)
    assert (where_driver, where_spark) == ("driver", "spark")
    for a, b in zip(on_driver(points), on_spark(points), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    data.unpersist()


def test_spark_sums_are_nan_at_a_point_where_one_partition_is_not_finite(spark):
    """Arrow turns NaN into null and Spark's sum skips nulls: without a guard, the partition that
    could not be evaluated dropped out of the sum and the point looked better than it was."""
    rows = [(float(v), 1.0) for v in (1, 2, 3, 4, 10, 20, 30, 40)]
    data = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), "v double, n double")
    assert [sorted(r.v for r in part) for part in data.rdd.glom().collect()] == [[1, 2, 3, 4], [10, 20, 30, 40]]

    def partials(params, v, n):          # log(v - c) summed: NaN for the rows with v < c
        with np.errstate(invalid="ignore"):
            return np.array([np.dot(n, np.log(v - params[0])), np.dot(n, -1.0 / (v - params[0]))])

    fine, broken = clv.spark_sums_at(data, ["v"], partials, [np.array([0.0]), np.array([5.0])], 2)
    values = np.array([1, 2, 3, 4, 10, 20, 30, 40], dtype=float)
    np.testing.assert_allclose(fine, [np.log(values).sum(), -(1 / values).sum()])
    assert np.all(np.isnan(broken))


@pytest.mark.extended
def test_bgnbd_fit_matches_a_single_node_fit_within_one_percent(spark, bgnbd_data):
    rows, df = bgnbd_data
    data = tuple(np.array([r[i] for r in rows]) for i in (1, 2, 3))
    reference, ref_ll = _reference_fit(_reference_bgnbd_ll, data, [1.0, 10.0, 1.0, 1.0])
    fit = clv.fit_bgnbd(df)
    got = np.array([fit.params[k] for k in ("r", "alpha", "a", "b")])
    assert fit.converged and fit.rows == 3000
    np.testing.assert_allclose(got, reference, rtol=0.01)
    assert fit.log_likelihood == pytest.approx(ref_ll, rel=1e-6)
    # and it recovers the simulated parameters roughly (sampling error at n = 3000)
    np.testing.assert_allclose(got, [0.5, 20.0, 0.8, 2.5], rtol=0.5)


def _reference_gg_ll(params, x, m):
    p, q, g = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(g) + (p * x - 1) * np.log(m)
            + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))


@pytest.mark.extended
def test_gamma_gamma_fit_matches_a_single_node_fit_within_one_percent(spark):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(2000):
        nu = rng.gamma(4.0, 1 / 15.0)
        x = 1 + rng.poisson(3)
        rows.append((f"P{i}", float(x), float(np.mean(rng.gamma(6.0, 1 / nu, size=x)))))
    rows.append(("zero", 0.0, 0.0))           # no repeat purchase: not part of the fit
    df = spark.createDataFrame(rows, "person_id string, frequency double, monetary_value double")
    x, m = (np.array([r[i] for r in rows[:-1]]) for i in (1, 2))
    reference, _ = _reference_fit(_reference_gg_ll, (x, m), [1.0, 1.0, 1.0])
    fit = clv.fit_gamma_gamma(df)
    got = np.array([fit.params[k] for k in ("p", "q", "gamma")])
    assert fit.rows == 2000
    np.testing.assert_allclose(got, reference, rtol=0.01)


def test_conditional_expectation_matches_the_published_example():
    # Fader, Hardie & Lee (2005), CDNOW parameters (weeks): x = 2, t_x = 30.43, T = 38.86 -> 1.226 in 39 weeks
    got = clv.expected_purchases_np(39, [2.0], [30.43], [38.86], 0.243, 4.414, 0.793, 2.426)[0]
    assert got == pytest.approx(1.226, abs=5e-4)


def test_scores_p_alive_and_clv(spark):
    summary = spark.createDataFrame([("new", 0.0, 0.0, 10.0, 0.0), ("loyal", 8.0, 200.0, 205.0, 50.0),
                                     ("gone", 8.0, 300.0, 400.0, 50.0)],
                                    "person_id string, frequency double, recency double, T double, monetary_value double")
    bg = {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5}
    gg = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    got = {r.person_id: r for r in clv.score(summary, bg, gg, 365, 0.1).collect()}
    assert got["new"].p_alive == 1.0                         # no repeat purchase: cannot have dropped out
    assert got["loyal"].p_alive > 0.9 > got["gone"].p_alive   # 100 silent days after 8 repeats
    assert got["new"].expected_value == pytest.approx(6.0 * 15.0 / 3.0)   # population mean p*gamma/(q-1)
    assert got["loyal"].expected_value == pytest.approx(6.0 * (15.0 + 8 * 50.0) / (6.0 * 8 + 4.0 - 1))
    assert got["loyal"].expected_purchases == pytest.approx(
        clv.expected_purchases_np(365, [8.0], [200.0], [205.0], **bg)[0])
    assert got["loyal"].clv > got["gone"].clv > 0
    # discounting: the CLV is below the undiscounted purchases x value
    assert got["loyal"].clv < got["loyal"].expected_purchases * got["loyal"].expected_value


@pytest.mark.extended
def test_summary_and_fits_agree_with_the_lifetimes_library(spark):
    lifetimes = pytest.importorskip("lifetimes")
    import pandas as pd

    rng = np.random.default_rng(21)
    rows = []
    for i in range(1000):
        start = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        rate, nu, drop = rng.gamma(0.8, 1 / 20.0), rng.gamma(4.0, 1 / 15.0), rng.beta(0.8, 2.5)
        day, alive = 0.0, True
        rows.append((f"P{i}", start, float(rng.gamma(6.0, 1 / nu))))
        while alive:
            day += rng.exponential(1 / rate)
            if day > 600:
                break
            when = start + pd.Timedelta(days=int(day))
            if when > pd.Timestamp("2024-06-30"):
                break
            rows.append((f"P{i}", when, float(rng.gamma(6.0, 1 / nu))))
            alive = rng.random() > drop
    tx = pd.DataFrame(rows, columns=["person_id", "date", "net"])
    expected = lifetimes.utils.summary_data_from_transaction_data(
        tx, "person_id", "date", monetary_value_col="net", observation_period_end="2024-06-30", freq="D")
    df = spark.createDataFrame([(p, d.date(), v) for p, d, v in rows], "person_id string, order_date date, net double")
    ours = clv.btyd_summary(df, date(2024, 6, 30)).toPandas().set_index("person_id").sort_index()
    expected = expected.sort_index()
    np.testing.assert_allclose(ours[["frequency", "recency", "T"]].to_numpy(),
                               expected[["frequency", "recency", "T"]].to_numpy())
    np.testing.assert_allclose(ours["monetary_value"].to_numpy(), expected["monetary_value"].to_numpy(), rtol=1e-9)

    reference = lifetimes.BetaGeoFitter().fit(expected["frequency"], expected["recency"], expected["T"], tol=1e-6)
    fit = clv.fit_bgnbd(clv.btyd_summary(df, date(2024, 6, 30)))
    np.testing.assert_allclose([fit.params[k] for k in ("r", "alpha", "a", "b")],
                               reference.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=0.01)
    repeat = expected[(expected["frequency"] > 0) & (expected["monetary_value"] > 0)]
    gg_ref = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    gg = clv.fit_gamma_gamma(clv.btyd_summary(df, date(2024, 6, 30)))
    np.testing.assert_allclose([gg.params[k] for k in ("p", "q", "gamma")],
                               gg_ref.params_[["p", "q", "v"]].to_numpy(), rtol=0.01)
