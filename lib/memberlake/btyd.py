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


def btyd_summary(purchases: DataFrame, as_of: date) -> DataFrame:
    """(person_id, frequency, recency, T, monetary_value) from purchases up to ``as_of``."""
    days = (purchases.where(F.col("order_date") <= F.lit(as_of))
            .groupBy("person_id", "order_date").agg(F.sum("net").alias("value")))
    per = days.groupBy("person_id").agg(
        F.min("order_date").alias("first"), F.max("order_date").alias("last"),
        F.count(F.lit(1)).alias("days"), F.sum("value").alias("total"),
        F.min_by("value", "order_date").alias("first_value"))
    frequency = F.col("days") - 1
    return per.select(
        "person_id",
        frequency.cast("double").alias("frequency"),
        F.datediff("last", "first").cast("double").alias("recency"),
        F.datediff(F.lit(as_of), "first").cast("double").alias("T"),
        F.when(frequency > 0, (F.col("total") - F.col("first_value")) / frequency).otherwise(0.0).alias("monetary_value"),
    )


def expected_value(params: dict[str, float]) -> Column:
    """Gamma-Gamma conditional mean spend per purchase (population mean without repeats)."""
    p, q, gamma = (params[k] for k in ("p", "q", "gamma"))
    x, m = F.col("frequency"), F.col("monetary_value")
    population = p * gamma / (q - 1)
    return F.when((x > 0) & (m > 0), p * (gamma + x * m) / (p * x + q - 1)).otherwise(F.lit(population))
