"""Buy-till-you-die transaction models: BG/NBD, MBG/NBD and Pareto/NBD, and the per-person summary
they are fitted on. Below the areas: value fits and scores them, forecast sums their expectations.

Each model gives, vectorised over numpy arrays of (x = frequency, t_x = recency, T = age):
- ``partials``: the count-weighted sums of the log-likelihood and of its partial derivatives in
  the model's parameters (what one Spark pass over the distinct (x, t_x, T) returns);
- ``expected``: the conditional expectation of purchases in (T, T + t];
- ``p_alive``: the probability that the person is still active at T.

Time is in the summary's unit (days in the pipeline, weeks for the published CDNOW figures): the
scale parameters (alpha, beta) carry it, the shape parameters do not.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way" (BG/NBD);
Batislam, Denizel & Filiztekin (2007) (MBG/NBD, the variant that lets a person drop out right
after the first purchase, as in ``lifetimes``' ModifiedBetaGeoFitter); Schmittlein, Morrison &
Colombo (1987) and Fader & Hardie's note "Deriving the Pareto/NBD likelihood" (Pareto/NBD).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class TransactionModel:
    name: str
    parameters: tuple[str, ...]
    partials: Callable[..., np.ndarray]
    expected: Callable[..., np.ndarray]
    p_alive: Callable[..., np.ndarray]

    def start(self, mean_t: float) -> list[float]:
        """Default start of the optimiser: shapes at 1, time scales at the mean age."""
        scale = max(mean_t, 1.0)
        return [scale if p in ("alpha", "beta") else 1.0 for p in self.parameters]


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in values]


# -- BG/NBD ----------------------------------------------------------------------------------
def bgnbd_partials(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """L = A1 A2 (A3 + [x > 0] A4): the bracket's log is a log-sum-exp whose weight w splits the
    gradient between the "still alive" and "dropped out after the last purchase" terms."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    u = -(r + x) * np.log(alpha + T)
    bx = np.where(repeat, b + x - 1, 1.0)
    v = np.where(repeat, np.log(a) - np.log(bx) - (r + x) * np.log(alpha + tx), -np.inf)
    ll = a1 + a2 + np.logaddexp(u, v)
    w = np.where(repeat, 1.0 / (1.0 + np.exp(np.clip(u - v, -700, 700))), 0.0)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - (1 - w) * np.log(alpha + T) - w * np.log(alpha + tx)
    d_alpha = r / alpha - (1 - w) * (r + x) / (alpha + T) - w * (r + x) / (alpha + tx)
    d_a = digamma(a + b) - digamma(a + b + x) + w / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - np.where(repeat, w / bx, 0.0)
    return np.array([np.dot(n, t) for t in (ll, d_r, d_alpha, d_a, d_b)])


def bgnbd_expected(t: float, x, tx, T, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    from scipy.special import hyp2f1

    x, tx, T = _arrays(x, tx, T)
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    return head / (1 + tail)


def bgnbd_p_alive(x, tx, T, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    x, tx, T = _arrays(x, tx, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, a / (x + b - 1) * ((T + alpha) / (tx + alpha)) ** (x + r), 0.0)
    return 1 / (1 + odds)


# -- MBG/NBD ---------------------------------------------------------------------------------
def mbgnbd_partials(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """As BG/NBD with a drop-out chance at every purchase, the first included: the second term is
    there for x = 0 too and its beta-function ratio moves by one (b + x + 1)."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
    u = -(r + x) * np.log(alpha + T)
    v = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
    ll = a1 + a2 + np.logaddexp(u, v)
    w = 1.0 / (1.0 + np.exp(np.clip(u - v, -700, 700)))
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - (1 - w) * np.log(alpha + T) - w * np.log(alpha + tx)
    d_alpha = r / alpha - (1 - w) * (r + x) / (alpha + T) - w * (r + x) / (alpha + tx)
    d_a = digamma(a + b) - digamma(a + b + x + 1) + w / a
    d_b = digamma(a + b) + digamma(b + x + 1) - digamma(b) - digamma(a + b + x + 1) - w / (b + x)
    return np.array([np.dot(n, t) for t in (ll, d_r, d_alpha, d_a, d_b)])


def mbgnbd_expected(t: float, x, tx, T, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    from scipy.special import hyp2f1

    x, tx, T = _arrays(x, tx, T)
    hyp = hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
    head = (a + b + x) / (a - 1) * (1 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x))
    return head / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))


def mbgnbd_p_alive(x, tx, T, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    x, tx, T = _arrays(x, tx, T)
    return 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))


# -- Pareto/NBD ------------------------------------------------------------------------------
def _pareto_terms(params, x, tx, T) -> tuple[np.ndarray, np.ndarray]:
    """(log of the "alive at T" term, log-likelihood) per row.

    L = Γ(r+x) α^r β^s / Γ(r) · [ 1 / ((α+T)^(r+x) (β+T)^s) + s/(r+s+x) · A0 ], where A0 is a
    difference of two Gauss hypergeometric terms taken at t_x and at T, written around the larger
    of α and β so that the argument stays in [0, 1). Everything is in logs: (α+T)^(r+x)
    underflows for frequent buyers.
    """
    from scipy.special import gammaln, hyp2f1

    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        top, second, gap = alpha, s + 1.0, alpha - beta
    else:
        top, second, gap = beta, r + x, beta - alpha
    log_at_tx = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (top + tx))) - rsx * np.log(top + tx)
    log_at_T = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (top + T))) - rsx * np.log(top + T)
    # log(e^p - e^q) with p >= q (A0 > 0 as t_x <= T); 0 when t_x = T
    with np.errstate(divide="ignore"):
        log_a0 = log_at_tx + np.log1p(-np.exp(np.minimum(log_at_T - log_at_tx, 0.0)))
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = head - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
    ll = np.logaddexp(alive, head + np.log(s) - np.log(rsx) + log_a0)
    return alive, ll


PARETO_STEP = 1e-5


def pareto_nbd_partials(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log-likelihood sum and its gradient; the derivatives of the hypergeometric terms in the
    parameters have no closed form scipy offers, so each is a central difference in the log of
    the parameter, all evaluated in the same vectorised pass."""
    params = np.asarray(params, dtype=float)
    ll = np.dot(n, _pareto_terms(params, x, tx, T)[1])
    grad = []
    for i in range(len(params)):
        up, down = params.copy(), params.copy()
        up[i] *= np.exp(PARETO_STEP)
        down[i] *= np.exp(-PARETO_STEP)
        diff = np.dot(n, _pareto_terms(up, x, tx, T)[1] - _pareto_terms(down, x, tx, T)[1])
        grad.append(diff / (2 * PARETO_STEP) / params[i])
    return np.array([ll, *grad])


def pareto_nbd_expected(t: float, x, tx, T, r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    """E[purchases in (T, T + t]] = P(alive) · (r+x)(β+T) / ((α+T)(s−1)) · (1 − ((β+T)/(β+T+t))^(s−1));
    the limit s → 1 is (r+x)(β+T)/(α+T) · ln((β+T+t)/(β+T))."""
    x, tx, T = _arrays(x, tx, T)
    alive = pareto_nbd_p_alive(x, tx, T, r, alpha, s, beta)
    rate = (r + x) * (beta + T) / (alpha + T)
    if abs(s - 1.0) < 1e-9:
        return alive * rate * np.log((beta + T + t) / (beta + T))
    return alive * rate * (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)


def pareto_nbd_p_alive(x, tx, T, r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    x, tx, T = _arrays(x, tx, T)
    alive, ll = _pareto_terms(np.array([r, alpha, s, beta]), x, tx, T)
    return np.exp(alive - ll)


MODELS: dict[str, TransactionModel] = {
    "bgnbd": TransactionModel("bgnbd", ("r", "alpha", "a", "b"), bgnbd_partials, bgnbd_expected, bgnbd_p_alive),
    "mbgnbd": TransactionModel("mbgnbd", ("r", "alpha", "a", "b"), mbgnbd_partials, mbgnbd_expected, mbgnbd_p_alive),
    "pareto_nbd": TransactionModel("pareto_nbd", ("r", "alpha", "s", "beta"), pareto_nbd_partials,
                                   pareto_nbd_expected, pareto_nbd_p_alive),
}


def maximise(sums: Callable[[np.ndarray], np.ndarray], total: float, x0: list[float], max_iter: int):
    """L-BFGS-B on the log-parameters of a likelihood whose count-weighted sums (log-likelihood
    first, then the gradient) ``sums`` returns; the mean negative log-likelihood is minimised so
    the tolerances do not depend on the data size. Returns scipy's ``OptimizeResult`` (``x`` in
    logs) and the number of evaluations."""
    from scipy.optimize import minimize

    evaluations = {"count": 0}

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        evaluations["count"] += 1
        values = sums(params)
        ll, grad = values[0], values[1:]
        if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
            return 1e10, np.zeros(len(params))
        # chain rule for the log parametrisation
        return -ll / total, -(grad * params) / total

    with np.errstate(all="ignore"):
        result = minimize(objective, np.log(x0), jac=True, method="L-BFGS-B",
                          options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-13})
    return result, evaluations["count"]


HESSIAN_STEP = 1e-3


def log_covariance(sums_at: Callable[[list[np.ndarray]], list[np.ndarray]], params: np.ndarray,
                   step: float = HESSIAN_STEP) -> np.ndarray | None:
    """Asymptotic covariance of the log-parameters at the maximum: the inverse of the negative
    Hessian of the log-likelihood in log-parameters, by central differences of its gradient.

    ``sums_at`` gets all 2k parameter points at once and returns each point's sums (log-likelihood,
    then the gradient in the parameters), so a Spark caller evaluates them in one pass. None when
    the Hessian is not negative definite (a maximum on a boundary, or a flat likelihood).
    """
    params = np.asarray(params, dtype=float)
    k = len(params)
    points = []
    for i in range(k):
        for sign in (1.0, -1.0):
            shifted = np.log(params)
            shifted[i] += sign * step
            points.append(np.exp(shifted))
    sums = sums_at(points)
    grad_log = [np.asarray(s, dtype=float)[1:] * p for s, p in zip(sums, points, strict=True)]
    hessian = np.column_stack([(grad_log[2 * i] - grad_log[2 * i + 1]) / (2 * step) for i in range(k)])
    hessian = (hessian + hessian.T) / 2
    if not np.all(np.isfinite(hessian)):
        return None
    try:
        np.linalg.cholesky(-hessian)
    except np.linalg.LinAlgError:
        return None
    return np.linalg.inv(-hessian)


def standard_errors(params: dict[str, float], log_cov: np.ndarray | None) -> dict[str, float]:
    """Standard errors of the parameters themselves (delta method: θ · se(log θ)); NaN without a
    covariance."""
    if log_cov is None:
        return {k: float("nan") for k in params}
    return {k: float(v * np.sqrt(log_cov[i, i])) for i, (k, v) in enumerate(params.items())}


def fit_counts(model: str, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray,
               max_iter: int = 200) -> tuple[dict[str, float], float, bool]:
    """(parameters, log-likelihood, converged) of ``model`` over in-memory distinct (x, t_x, T)
    rows with counts ``n``: the fit one worker runs for one as-of date's summary."""
    spec = MODELS[model]
    x, tx, T, n = _arrays(x, tx, T, n)
    total = float(n.sum())
    mean_t = float(np.dot(n, T) / total) if total else 1.0
    result, _ = maximise(lambda p: spec.partials(p, x, tx, T, n), total, spec.start(mean_t), max_iter)
    params = dict(zip(spec.parameters, np.exp(result.x).tolist(), strict=True))
    return params, float(-result.fun * total), bool(result.success)


def _frequency_recency_age(as_of: Column) -> list[Column]:
    """frequency (purchase days - 1), recency and T in days, from the per-person columns
    ``first``, ``last`` (purchase days) and ``days`` (their count): the summary's definitions."""
    return [(F.col("days") - 1).cast("double").alias("frequency"),
            F.datediff("last", "first").cast("double").alias("recency"),
            F.datediff(as_of, "first").cast("double").alias("T")]


def btyd_summary(purchases: DataFrame, as_of: date) -> DataFrame:
    """(person_id, frequency, recency, T, monetary_value) from purchases up to ``as_of``."""
    days = (purchases.where(F.col("order_date") <= F.lit(as_of))
            .groupBy("person_id", "order_date").agg(F.sum("net").alias("value")))
    per = days.groupBy("person_id").agg(
        F.min("order_date").alias("first"), F.max("order_date").alias("last"),
        F.count(F.lit(1)).alias("days"), F.sum("value").alias("total"),
        F.min_by("value", "order_date").alias("first_value"))
    repeats = F.col("days") - 1
    return per.select(
        "person_id", *_frequency_recency_age(F.lit(as_of)),
        F.when(repeats > 0, (F.col("total") - F.col("first_value")) / repeats).otherwise(0.0).alias("monetary_value"),
    )


def summaries_at(purchases: DataFrame, dates: DataFrame) -> DataFrame:
    """(person_id, as_of_date, frequency, recency, T) from the purchase days on or before each date
    of ``dates`` (as_of_date): :func:`btyd_summary` without spend, for many dates in one pass."""
    keys = ["person_id", "as_of_date"]
    days = purchases.select("person_id", "order_date").distinct()
    rows = days.join(F.broadcast(dates), F.col("order_date") <= F.col("as_of_date"), "inner")
    per = rows.groupBy(*keys).agg(F.min("order_date").alias("first"), F.max("order_date").alias("last"),
                                  F.count(F.lit(1)).alias("days"))
    return per.select(*keys, *_frequency_recency_age(F.col("as_of_date")))


def expected_value(params: dict[str, float]) -> Column:
    """Gamma-Gamma conditional mean spend per purchase (population mean without repeats)."""
    p, q, gamma = (params[k] for k in ("p", "q", "gamma"))
    x, m = F.col("frequency"), F.col("monetary_value")
    population = p * gamma / (q - 1)
    return F.when((x > 0) & (m > 0), p * (gamma + x * m) / (p * x + q - 1)).otherwise(F.lit(population))
