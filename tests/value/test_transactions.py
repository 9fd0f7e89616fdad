"""MBG/NBD and Pareto/NBD: likelihoods against references written independently of the model code,
gradients against finite differences, fits against the published CDNOW parameters and
``lifetimes``, predictions against their defining integrals, and the holdout choice.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln, gammaln

from memberlake import btyd as transactions
from memberlake.value import clv

# A hand-made summary: never repeated, repeated early then silent, repeated up to T, t_x = T.
X = np.array([0.0, 1.0, 3.0, 7.0, 2.0, 12.0])
TX = np.array([0.0, 5.0, 30.0, 60.0, 38.0, 70.0])
T = np.array([40.0, 45.0, 50.0, 61.0, 38.0, 71.0])
N = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 4.0])


def _pareto_by_integration(params, x, tx, T) -> float:
    """The Pareto/NBD likelihood of one person as its definition: Poisson purchases at rate λ
    while alive, exponential lifetime at rate μ, λ ~ Gamma(r, α), μ ~ Gamma(s, β), integrated
    numerically (no hypergeometric function involved)."""
    r, alpha, s, beta = params

    def density(lam, mu):
        alive = lam ** x * np.exp(-(lam + mu) * T)
        died = lam ** x * mu / (lam + mu) * (np.exp(-(lam + mu) * tx) - np.exp(-(lam + mu) * T))
        prior = (np.exp(r * np.log(alpha) + (r - 1) * np.log(lam) - alpha * lam - gammaln(r))
                 * np.exp(s * np.log(beta) + (s - 1) * np.log(mu) - beta * mu - gammaln(s)))
        return (alive + died) * prior

    value, _ = integrate.dblquad(lambda mu, lam: density(lam, mu), 0, np.inf, 0, np.inf, epsabs=0, epsrel=1e-10)
    return value


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.61, 11.7), (0.8, 4.0, 1.3, 25.0)], ids=["alpha<beta", "alpha>beta"])   # both forms of A0
def test_pareto_nbd_likelihood_equals_its_defining_integral(params):
    _, ll = transactions._pareto_terms(np.array(params), X, TX, T)
    for i in range(len(X)):
        assert np.exp(ll[i]) == pytest.approx(_pareto_by_integration(params, X[i], TX[i], T[i]), rel=1e-5)


def _exponential_dropout_ll(r, alpha, mu, x, tx, T) -> float:
    """The limit of the Pareto/NBD as s, beta -> infinity with s/beta = mu: every lifetime is
    exponential at rate mu, so only lambda is integrated (in closed form) and the dropout time
    numerically."""
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = np.exp(head - (r + x) * np.log(alpha + T) - mu * T)
    died, _ = integrate.quad(lambda tau: mu * np.exp(head - (r + x) * np.log(alpha + tau) - mu * tau), tx, T,
                             epsabs=0, epsrel=1e-12)
    return float(np.log(alive + died))


@pytest.mark.parametrize("s", [50.0, 400.0, 1e4, 1e6])
def test_pareto_nbd_likelihood_stays_finite_where_dropout_rates_are_alike(s):
    """A fit on data whose dropout rates hardly vary walks along s, beta -> infinity at a fixed
    s/beta; scipy's hyp2f1, which the closed form needs, returned NaN there for frequent buyers
    (r+s+x of a few hundred, argument near 1). The likelihood must stay finite and reach the
    exponential-dropout limit."""
    r, alpha, mu = 0.87, 40.7, 0.002
    x = np.array([0.0, 6.0, 3.0, 52.0, 159.0, 1.0])
    tx = np.array([0.0, 100.0, 127.0, 98.0, 600.0, 237.0])
    t_ = np.array([126.0, 186.0, 142.0, 226.0, 639.0, 237.0])
    alive, ll = transactions._pareto_terms(np.array([r, alpha, s, s / mu]), x, tx, t_)
    assert np.all(np.isfinite(ll)) and np.all(alive <= ll)
    if s >= 1e6:
        limit = [_exponential_dropout_ll(r, alpha, mu, *row) for row in zip(x, tx, t_, strict=True)]
        np.testing.assert_allclose(ll, limit, rtol=1e-5)
    partials = transactions.pareto_nbd_partials(np.array([r, alpha, s, s / mu]), x, tx, t_, np.ones(len(x)))
    assert np.all(np.isfinite(partials))


def test_pareto_nbd_fit_stops_at_the_shape_bound_when_everyone_drops_out_at_one_rate(spark, caplog):
    """Simulated with one dropout rate for all (mu = 0.004 a day): the likelihood rises without end
    along s, beta at s/beta = mu. The fit must stop at the shape bound, say so, recover mu and r,
    and predict as the exponential-dropout limit does. (The sample decides: about half the samples
    drawn with one shared rate look slightly heterogeneous and have a finite maximum; this seed's
    maximum is at the limit.)"""
    rng = np.random.default_rng(7)
    n, mu, r, alpha = 6000, 0.004, 0.8, 20.0
    end = np.minimum(rng.exponential(1 / mu, n), t_ := rng.uniform(60, 400, n))
    x = rng.poisson(rng.gamma(r, 1 / alpha, n) * end).astype(float)
    tx = np.where(x > 0, end * rng.beta(np.maximum(x, 1), 1), 0.0)       # the last of x uniform times
    params, _, converged = transactions.fit_counts("pareto_nbd", x, tx, t_, np.ones(n))
    assert converged
    assert transactions.at_bound(params, transactions.MODELS["pareto_nbd"].upper()) == ["s"]
    assert params["s"] / params["beta"] == pytest.approx(mu, rel=0.1)
    assert params["r"] == pytest.approx(r, rel=0.1) and params["alpha"] == pytest.approx(alpha, rel=0.15)
    # the limit: P(alive) from the exponential-dropout likelihood, then (r+x)/(alpha+T) (1 - e^(-mu t)) / mu
    rate = params["s"] / params["beta"]
    for i in range(5):
        ll = _exponential_dropout_ll(params["r"], params["alpha"], rate, x[i], tx[i], t_[i])
        alive = np.exp(gammaln(params["r"] + x[i]) - gammaln(params["r"]) + params["r"] * np.log(params["alpha"])
                       - (params["r"] + x[i]) * np.log(params["alpha"] + t_[i]) - rate * t_[i] - ll)
        limit = alive * (params["r"] + x[i]) / (params["alpha"] + t_[i]) * (1 - np.exp(-rate * 90)) / rate
        got = transactions.pareto_nbd_expected(90, [x[i]], [tx[i]], [t_[i]], *params.values())[0]
        assert got == pytest.approx(limit, rel=1e-3)
    # the value job's fit says so in its message and log
    summary = spark.createDataFrame([(float(a), float(b), float(c)) for a, b, c in zip(x, tx, t_, strict=True)],
                                    "frequency double, recency double, T double")
    with caplog.at_level("WARNING", logger="memberlake.value.clv"):
        fit = clv.fit_transactions(summary, "pareto_nbd")
    assert fit.params["s"] == pytest.approx(transactions.SHAPE_LIMIT) and fit.message.endswith("at the upper bound: s")
    assert any("s at the upper bound" in r.getMessage() for r in caplog.records)
    # s is held at the bound in the covariance: no spread along the flat ridge, the others have theirs
    errors = fit.std_errors
    assert np.isnan(errors["s"]) and np.all(fit.log_covariance[2] == 0) and np.all(fit.log_covariance[:, 2] == 0)
    assert 0 < errors["r"] < 0.1 * fit.params["r"] and 0 < errors["beta"] < 0.2 * fit.params["beta"]


def _mbgnbd_ll(params, x, tx, T):
    """MBG/NBD as Batislam et al. write it: B(a, b+x+1)/B(a, b) Γ(r+x)α^r / (Γ(r)(α+T)^(r+x))
    + B(a+1, b+x)/B(a, b) Γ(r+x)α^r / (Γ(r)(α+t_x)^(r+x))."""
    r, alpha, a, b = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    return np.logaddexp(betaln(a, b + x + 1) - betaln(a, b) + head - (r + x) * np.log(alpha + T),
                        betaln(a + 1, b + x) - betaln(a, b) + head - (r + x) * np.log(alpha + tx))


@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd"])
def test_log_likelihood_and_gradient_match_the_reference_on_spark(spark, model):
    params = np.array([0.7, 15.0, 1.2, 3.0])
    # Pareto/NBD: its per-person likelihood is checked against the integral above (one
    # integral costs a second, too slow for the finite differences here)
    reference = {"mbgnbd": lambda p: np.dot(N, _mbgnbd_ll(p, X, TX, T)),
                 "pareto_nbd": lambda p: np.dot(N, transactions._pareto_terms(p, X, TX, T)[1])}[model]
    data = spark.createDataFrame([(float(x), float(tx), float(t), float(n)) for x, tx, t, n in zip(X, TX, T, N, strict=True)],
                                 "frequency double, recency double, T double, n double")
    got = clv.spark_sums(data, ["frequency", "recency", "T"], transactions.MODELS[model].partials, params, 5)
    assert got[0] == pytest.approx(reference(params), rel=1e-6)
    for i in range(4):
        h = 1e-4 * params[i]
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        assert got[i + 1] == pytest.approx((reference(up) - reference(down)) / (2 * h), rel=1e-4, abs=1e-6)


@pytest.fixture(scope="module")
def cdnow(spark):
    datasets = pytest.importorskip("lifetimes.datasets")
    summary = datasets.load_cdnow_summary(index_col=[0])        # 2,357 customers, weeks
    rows = [(str(i), float(x), float(tx), float(t))
            for i, x, tx, t in zip(summary.index, summary["frequency"], summary["recency"], summary["T"], strict=True)]
    return summary, spark.createDataFrame(rows, "person_id string, frequency double, recency double, T double")


@pytest.mark.extended
def test_pareto_nbd_fit_matches_the_published_cdnow_parameters(cdnow):
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model": r 0.553,
    # alpha 10.578, s 0.606, beta 11.669 (weeks); log-likelihood -9594.98.
    _, df = cdnow
    fit = clv.fit_transactions(df, "pareto_nbd")
    got = [fit.params[k] for k in ("r", "alpha", "s", "beta")]
    np.testing.assert_allclose(got, [0.553, 10.578, 0.606, 11.669], rtol=0.005)
    assert fit.log_likelihood == pytest.approx(-9594.98, abs=0.05)


@pytest.mark.extended
def test_mbgnbd_fit_matches_lifetimes(cdnow):
    summary, df = cdnow
    import lifetimes

    reference = lifetimes.ModifiedBetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"], tol=1e-8)
    fit = clv.fit_transactions(df, "mbgnbd")
    got = [fit.params[k] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(got, [reference.params_[k] for k in ("r", "alpha", "a", "b")], rtol=0.01)
    # and its predictions and P(alive) agree with the library's
    x, tx, t = summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()
    ref_params = [reference.params_[k] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(transactions.mbgnbd_expected(39, x, tx, t, *ref_params),
                               reference.conditional_expected_number_of_purchases_up_to_time(39, x, tx, t), rtol=1e-6)
    np.testing.assert_allclose(transactions.mbgnbd_p_alive(x, tx, t, *ref_params),
                               reference.conditional_probability_alive(x, tx, t), rtol=1e-6)


def test_pareto_nbd_predictions_equal_their_integrals():
    """P(alive) and E[purchases in (T, T+t]] against the posterior integrals over (λ, μ)."""
    params = (0.55, 10.6, 0.61, 11.7)
    r, alpha, s, beta = params
    horizon = 39.0
    for x, tx, t_ in [(2.0, 30.43, 38.86), (0.0, 0.0, 20.0), (9.0, 70.0, 71.0)]:
        def posterior(lam, mu, what, x=x, tx=tx, t_=t_):
            prior = lam ** (r - 1) * np.exp(-alpha * lam) * mu ** (s - 1) * np.exp(-beta * mu)
            alive = lam ** x * np.exp(-(lam + mu) * t_)
            died = lam ** x * mu / (lam + mu) * (np.exp(-(lam + mu) * tx) - np.exp(-(lam + mu) * t_))
            if what == "total":
                return (alive + died) * prior
            if what == "alive":
                return alive * prior
            return alive * prior * lam / mu * (1 - np.exp(-mu * horizon))      # expected purchases if alive
        total, alive_mass, purchases = (
            integrate.dblquad(lambda mu, lam, w=w: posterior(lam, mu, w), 0, np.inf, 0, np.inf, epsabs=0, epsrel=1e-10)[0]
            for w in ("total", "alive", "purchases"))
        assert transactions.pareto_nbd_p_alive([x], [tx], [t_], *params)[0] == pytest.approx(alive_mass / total, rel=1e-5)
        assert transactions.pareto_nbd_expected(horizon, [x], [tx], [t_], *params)[0] == pytest.approx(
            purchases / total, rel=1e-5)


def test_choice_takes_the_lowest_holdout_error_and_never_a_failed_model():
    errors = {"bgnbd": {"mae": 0.30}, "mbgnbd": {"mae": 0.30}, "pareto_nbd": {"mae": 0.29}}
    assert clv.choose(errors, ["bgnbd", "mbgnbd", "pareto_nbd"]) == "pareto_nbd"
    errors["pareto_nbd"]["mae"] = float("nan")
    assert clv.choose(errors, ["bgnbd", "mbgnbd", "pareto_nbd"]) == "bgnbd"      # a tie: the first listed
    assert clv.choose(errors, ["mbgnbd", "bgnbd"]) == "mbgnbd"
    with pytest.raises(ValueError, match="no transaction model"):
        clv.choose({"pareto_nbd": {"mae": float("nan")}}, ["pareto_nbd"])


def _pareto_purchases(n: int, seed: int, days: int) -> list[tuple[str, date, float]]:
    """Purchases of ``n`` persons simulated from a Pareto/NBD process (daily rate λ, lifetime rate
    μ), each starting with a purchase on a day of the first quarter."""
    rng = np.random.default_rng(seed)
    start = date(2024, 1, 1)
    rows = []
    for i in range(n):
        lam, mu = rng.gamma(0.9, 1 / 12.0), rng.gamma(0.8, 1 / 150.0)
        first = int(rng.integers(0, 90))
        death = first + rng.exponential(1 / mu)
        t = float(first)
        rows.append((f"P{i}", start + timedelta(days=first), 20.0))
        while True:
            t += rng.exponential(1 / lam)
            if t > min(death, days - 1):
                break
            rows.append((f"P{i}", start + timedelta(days=int(t)), 20.0))
    return rows


@pytest.mark.extended
def test_holdout_report_compares_every_candidate_and_chooses_the_generating_model(spark):
    days = 540
    purchases = spark.createDataFrame(_pareto_purchases(2500, 11, days), "person_id string, order_date date, net double")
    as_of = date(2024, 1, 1) + timedelta(days=days - 1)
    holdout = clv.holdout_report(purchases, as_of, 180, 200, ["bgnbd", "mbgnbd", "pareto_nbd"])
    assert set(holdout.fits) == set(holdout.errors) == {"bgnbd", "mbgnbd", "pareto_nbd"}
    report = holdout.report.collect()
    assert {r.model for r in report} == {"bgnbd", "mbgnbd", "pareto_nbd"}
    for model in holdout.fits:      # every model sees the same persons and the same actual purchases
        rows = [r for r in report if r.model == model]
        assert sum(r.persons for r in rows) == 2500
        actual = sum(r.persons * r.mean_actual for r in rows)
        assert actual == pytest.approx(holdout.errors[model]["actual"])
        assert sum(r.persons * r.mean_predicted for r in rows) == pytest.approx(holdout.errors[model]["predicted"])
    assert holdout.chosen == "pareto_nbd", holdout.errors
