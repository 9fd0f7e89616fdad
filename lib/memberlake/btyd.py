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
        return [scale if p in TIME_SCALES else 1.0 for p in self.parameters]

    def upper(self) -> list[float | None]:
        """Upper bounds of the optimiser: ``SHAPE_LIMIT`` on the shapes, none on the time scales."""
        return [None if p in TIME_SCALES else SHAPE_LIMIT for p in self.parameters]


# The parameters that carry the summary's time unit; every other one is a shape.
TIME_SCALES = ("alpha", "beta")


# A gamma shape this large means a coefficient of variation of 1%: the rates it mixes hardly vary
# between persons. When they do not vary at all, the likelihood rises without end along shape and
# scale together at a fixed ratio (e.g. Pareto/NBD's s, beta -> infinity at s/beta = the shared
# dropout rate); the bound stops the optimiser there, at what is the limiting model in effect.
SHAPE_LIMIT = 1e4


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
# Gauss-Legendre rules of the dropout integral below: 8 nodes per panel, panels of width at most
# _PANEL_WIDTH in u (up to _MAX_PANELS). Measured error of the log-likelihood per row against
# panels of width 1 (about 1e-13 against adaptive quadrature): 2e-10 at 1.5, 8e-9 at 2, 3e-6 at 3.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_PANEL_WIDTH = 1.5
_MAX_PANELS = 12
_QUADRATURE_ROWS = 16_384


def _rule(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """(node positions as fractions of the width, log weights as fractions of it) of ``panels`` panels."""
    fractions = ((np.arange(panels)[:, None] + (_GL_NODES[None, :] + 1) / 2) / panels).ravel()
    return fractions, np.log(np.tile(_GL_WEIGHTS / 2 / panels, panels))


_RULES = {p: _rule(p) for p in range(1, _MAX_PANELS + 1)}


def log_dropout_integral(k1, k2: float, alpha: float, beta: float, t1, t2,
                         means_too: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """The integral over tau in [t1, t2] of f(tau) / f(t1), f = (alpha+tau)^-k1 (beta+tau)^-k2,
    per row: its log, and the means under f of log((alpha+tau)/(alpha+t1)), (alpha+t1)/(alpha+tau),
    log((beta+tau)/(beta+t1)) and (beta+t1)/(beta+tau), from which the derivatives of its log in
    k1, alpha, k2 and beta follow. Relative to t1 so that no large terms cancel when k2 is large.

    Why not the closed form: it is a difference of two Gauss hypergeometric terms, and scipy's
    hyp2f1 returns NaN once r+s+x is a few hundred and its argument is near 1, which is where a
    fit whose dropout rates are nearly alike goes (s and beta large, s/beta fixed). The integrand
    is smooth and decreasing, so after the change of variable tau = t1 + c (e^u - 1), with c its
    decay length at t1, composite Gauss-Legendre in u (8 nodes per panel of width at most 1.5) is
    accurate to about 2e-10 in the log for any parameters (checked against adaptive quadrature),
    and the same nodes give the gradient. Most rows need one to four panels.
    Rows with t2 = t1 give -inf and means of 0. Without ``means_too`` the means are all 0 (the
    likelihood alone costs about half as much).
    """
    from scipy.special import logsumexp

    k1, t1, t2 = np.broadcast_arrays(*_arrays(k1, t1, t2))
    log_i = np.empty(k1.shape)
    means = [np.zeros(k1.shape) for _ in range(4)]
    a1, b1 = alpha + t1, beta + t1
    c = 1.0 / (k1 / a1 + k2 / b1)
    width = np.log1p((t2 - t1) / c)
    panels = np.clip(np.ceil(width / _PANEL_WIDTH), 1, _MAX_PANELS).astype(int)
    for count in np.unique(panels):                     # rows that need the same number of panels
        fractions, log_weights = _RULES[int(count)]
        rows = np.flatnonzero(panels == count)
        for lo in range(0, len(rows), _QUADRATURE_ROWS):   # bounds the (rows x nodes) temporaries
            part = rows[lo:lo + _QUADRATURE_ROWS]
            u = width[part, None] * fractions[None, :]
            step = c[part, None] * np.expm1(u)
            log_a, log_b = np.log1p(step / a1[part, None]), np.log1p(step / b1[part, None])
            terms = -k1[part, None] * log_a - k2 * log_b + u + log_weights
            with np.errstate(divide="ignore", invalid="ignore"):
                total = logsumexp(terms, axis=1)
                log_i[part] = np.log(c[part]) + np.log(width[part]) + total
                if not means_too:
                    continue
                share = np.exp(terms - total[:, None])        # each node's part of the integral
                spans = width[part] > 0
                for out, value in zip(means, (log_a, np.exp(-log_a), log_b, np.exp(-log_b)), strict=True):
                    out[part] = np.where(spans, np.sum(share * value, axis=1), 0.0)
    return log_i, means


def _pareto_terms(params, x, tx, T, gradient: bool = False):
    """(log of the "alive at T" term, log-likelihood) per row, and with ``gradient`` the
    log-likelihood's partial derivatives in (r, alpha, s, beta) per row.

    L = Γ(r+x) α^r β^s / Γ(r) · [ 1 / ((α+T)^(r+x) (β+T)^s) + s ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ ]:
    alive at T, or dropped out at some τ after the last purchase (Fader & Hardie's note writes the
    integral with hypergeometric terms). Everything is in logs, with β^s / (β+t)^s written as
    (1 + t/β)^-s: (α+T)^(r+x) underflows for frequent buyers, and s log β is large when s is.
    """
    from scipy.special import digamma, gammaln

    r, alpha, s, beta = params
    base = gammaln(r + x) - gammaln(r)
    alive = base - r * np.log1p(T / alpha) - x * np.log(alpha + T) - s * np.log1p(T / beta)
    log_rel, (mean_log_a, mean_inv_a, mean_log_b, mean_inv_b) = log_dropout_integral(r + x, s + 1.0, alpha, beta, tx, T,
                                                                                      means_too=gradient)
    dropped = (base - r * np.log1p(tx / alpha) - x * np.log(alpha + tx) - s * np.log1p(tx / beta)
               + np.log(s) - np.log(beta + tx) + log_rel)
    ll = np.logaddexp(alive, dropped)
    if not gradient:
        return alive, ll
    weight = np.exp(alive - ll)                           # the alive term's share of L
    common_r = digamma(r + x) - digamma(r)
    d_alive = [common_r - np.log1p(T / alpha), r / alpha - (r + x) / (alpha + T),
               -np.log1p(T / beta), s * T / (beta * (beta + T))]
    d_dropped = [common_r - np.log1p(tx / alpha) - mean_log_a, r / alpha - (r + x) / (alpha + tx) * mean_inv_a,
                 -np.log1p(tx / beta) + 1.0 / s - mean_log_b, s / beta - (s + 1.0) / (beta + tx) * mean_inv_b]
    grads = [weight * da + (1 - weight) * dd for da, dd in zip(d_alive, d_dropped, strict=True)]
    return alive, ll, grads


def pareto_nbd_partials(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log-likelihood sum and its gradient, both from one pass over the quadrature nodes."""
    _, ll, grads = _pareto_terms(np.asarray(params, dtype=float), x, tx, T, gradient=True)
    return np.array([np.dot(n, ll), *(np.dot(n, g) for g in grads)])


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


def maximise(sums: Callable[[np.ndarray], np.ndarray], total: float, x0: list[float], max_iter: int,
             upper: list[float | None] | None = None):
    """L-BFGS-B on the log-parameters of a likelihood whose count-weighted sums (log-likelihood
    first, then the gradient) ``sums`` returns; the mean negative log-likelihood is minimised so
    the tolerances do not depend on the data size. ``upper``: optional upper bounds of the
    parameters (None: unbounded). Returns scipy's ``OptimizeResult`` (``x`` in logs) and the
    number of evaluations."""
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
        bounds = None if upper is None else [(None, None if u is None else np.log(u)) for u in upper]
        result = minimize(objective, np.log(x0), jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-13})
    return result, evaluations["count"]


HESSIAN_STEP = 1e-3


def log_covariance(sums_at: Callable[[list[np.ndarray]], list[np.ndarray]], params: np.ndarray,
                   step: float = HESSIAN_STEP, fixed: tuple[int, ...] = ()) -> np.ndarray | None:
    """Asymptotic covariance of the log-parameters at the maximum: the inverse of the negative
    Hessian of the log-likelihood in log-parameters, by central differences of its gradient.

    ``sums_at`` gets all parameter points at once and returns each point's sums (log-likelihood,
    then the gradient in the parameters), so a Spark caller evaluates them in one pass. The
    parameters at the indices ``fixed`` (a shape at its bound, where the likelihood is flat) are
    held where they are: their rows and columns are 0, the rest is the inverse of the others'
    Hessian. None when that Hessian is not negative definite (a flat likelihood).
    """
    params = np.asarray(params, dtype=float)
    k = len(params)
    free = [i for i in range(k) if i not in fixed]
    points = []
    for i in free:
        for sign in (1.0, -1.0):
            shifted = np.log(params)
            shifted[i] += sign * step
            points.append(np.exp(shifted))
    sums = sums_at(points)
    grad_log = [(np.asarray(s, dtype=float)[1:] * p)[free] for s, p in zip(sums, points, strict=True)]
    hessian = np.column_stack([(grad_log[2 * j] - grad_log[2 * j + 1]) / (2 * step) for j in range(len(free))])
    hessian = (hessian + hessian.T) / 2
    if not np.all(np.isfinite(hessian)):
        return None
    try:
        np.linalg.cholesky(-hessian)
    except np.linalg.LinAlgError:
        return None
    cov = np.zeros((k, k))
    cov[np.ix_(free, free)] = np.linalg.inv(-hessian)
    return cov


def at_bound(params: dict[str, float], upper: list[float | None] | None) -> list[str]:
    """The parameters that ended at their upper bound."""
    if upper is None:
        return []
    return [k for (k, v), u in zip(params.items(), upper, strict=True) if u is not None and v >= u * (1 - 1e-9)]


def standard_errors(params: dict[str, float], log_cov: np.ndarray | None) -> dict[str, float]:
    """Standard errors of the parameters themselves (delta method: θ · se(log θ)); NaN without a
    covariance."""
    if log_cov is None:
        return {k: float("nan") for k in params}
    return {k: float(v * np.sqrt(log_cov[i, i])) if log_cov[i, i] > 0 else float("nan")
            for i, (k, v) in enumerate(params.items())}


def fit_counts(model: str, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray,
               max_iter: int = 200) -> tuple[dict[str, float], float, bool]:
    """(parameters, log-likelihood, converged) of ``model`` over in-memory distinct (x, t_x, T)
    rows with counts ``n``: the fit one worker runs for one as-of date's summary."""
    spec = MODELS[model]
    x, tx, T, n = _arrays(x, tx, T, n)
    total = float(n.sum())
    mean_t = float(np.dot(n, T) / total) if total else 1.0
    result, _ = maximise(lambda p: spec.partials(p, x, tx, T, n), total, spec.start(mean_t), max_iter, spec.upper())
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
