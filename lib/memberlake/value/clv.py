"""Customer lifetime value: BG/NBD (transactions) and Gamma-Gamma (spend), fitted on Spark.

Summary per person (the buy-till-you-die definitions used by the ``lifetimes`` library, in days):
frequency = purchase days - 1 (repeat purchase periods), recency = last minus first purchase
day, T = as-of minus first purchase day, monetary_value = mean net value of the repeat purchase
days (0 without repeats).

The fit scales: the log-likelihood and its gradient are one pass of Spark over the distinct
(frequency, recency, T) combinations with their counts (BG/NBD) or the distinct (frequency,
monetary value) pairs of repeat buyers (Gamma-Gamma), each partition evaluating ln Gamma and
digamma (which Spark SQL lacks) vectorised with scipy and returning partial sums; only L-BFGS-B
on four (three) numbers runs on the driver. Predictions need the Gauss hypergeometric function,
also a pandas UDF over scipy.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fit:
    model: str
    params: dict[str, float]
    log_likelihood: float
    iterations: int
    converged: bool
    rows: int
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)


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


# -- BG/NBD ---------------------------------------------------------------------------------
def bgnbd_partials(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Weighted sums of the BG/NBD log-likelihood and its partial derivatives in r, alpha, a, b.

    Fader, Hardie & Lee (2005): L = A1 A2 (A3 + [x > 0] A4); the log of the bracket is a
    log-sum-exp whose weight w splits the gradient between the "still alive" and "dropped out"
    terms.
    """
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


def gamma_gamma_partials(params: np.ndarray, x: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Weighted sums of the Gamma-Gamma log-likelihood of mean repeat spend m over x repeats."""
    from scipy.special import digamma, gammaln

    p, q, g = params
    px = p * x
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g) + (px - 1) * np.log(m)
          + px * np.log(x) - (px + q) * np.log(g + m * x))
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(g + m * x))
    d_q = digamma(px + q) - digamma(q) + np.log(g) - np.log(g + m * x)
    d_g = q / g - (px + q) / (g + m * x)
    return np.array([np.dot(n, t) for t in (ll, d_p, d_q, d_g)])


def spark_sums(data: DataFrame, columns: list[str], partials, params: np.ndarray, size: int) -> np.ndarray:
    """``partials`` summed over ``data`` (with a count column ``n``), computed on the executors.

    ln Gamma and digamma are maths Spark SQL lacks, so each partition evaluates them vectorised
    (Arrow batches into numpy) and returns one row of partial sums; the driver adds them up.
    """
    import pandas as pd

    names = [f"s{i}" for i in range(size)]
    cols = list(columns)

    def per_partition(batches):
        acc = np.zeros(size)
        for pdf in batches:
            acc += partials(params, *[pdf[c].to_numpy(dtype=float) for c in cols], pdf["n"].to_numpy(dtype=float))
        yield pd.DataFrame([acc], columns=names)

    schema = ", ".join(f"{name} double" for name in names)
    row = data.select(*cols, "n").mapInPandas(per_partition, schema).agg(*[F.sum(c) for c in names]).first()
    return np.array([row[i] for i in range(size)], dtype=float)


def _maximise(model: str, data: DataFrame, columns: list[str], partials, names: list[str], x0: list[float],
              max_iter: int) -> Fit:
    """L-BFGS-B on log-parameters; each evaluation is one pass of Spark over ``data``."""
    from scipy.optimize import minimize

    total = data.agg(F.sum("n")).first()[0]
    evaluations = {"count": 0}

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        evaluations["count"] += 1
        sums = spark_sums(data, columns, partials, params, len(names) + 1)
        ll, grad = sums[0], sums[1:]
        if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
            return 1e10, np.zeros(len(params))
        # minimise the mean negative log-likelihood; chain rule for the log parametrisation
        return -ll / total, -(grad * params) / total

    result = minimize(objective, np.log(x0), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-13})
    params = dict(zip(names, np.exp(result.x).tolist(), strict=True))
    log.info("%s fit: %s, log-likelihood %.4f, %d iterations (%d evaluations), %s", model, params,
             -result.fun * total, result.nit, evaluations["count"], result.message)
    return Fit(model, params, float(-result.fun * total), int(result.nit), bool(result.success), int(total),
               str(result.message))


def _few_partitions(data: DataFrame) -> DataFrame:
    """Cached with one partition per core: each optimiser step starts one Python task per partition."""
    return data.coalesce(data.sparkSession.sparkContext.defaultParallelism).cache()


def fit_bgnbd(summary: DataFrame, max_iter: int = 200) -> Fit:
    """BG/NBD parameters r, alpha, a, b (alpha in days), over distinct (x, t_x, T) with counts."""
    data = _few_partitions(summary.groupBy("frequency", "recency", "T").agg(F.count(F.lit(1)).alias("n")))
    mean_t = data.agg(F.sum(F.col("T") * F.col("n")) / F.sum("n")).first()[0] or 1.0
    try:
        return _maximise("bgnbd", data, ["frequency", "recency", "T"], bgnbd_partials, ["r", "alpha", "a", "b"],
                         [1.0, max(mean_t, 1.0), 1.0, 1.0], max_iter)
    finally:
        data.unpersist()


def fit_gamma_gamma(summary: DataFrame, max_iter: int = 200) -> Fit:
    """Gamma-Gamma parameters p, q, gamma over persons with repeat purchases of positive value."""
    data = _few_partitions(summary.where((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
                           .groupBy("frequency", "monetary_value").agg(F.count(F.lit(1)).alias("n")))
    mean_m = data.agg(F.sum(F.col("monetary_value") * F.col("n")) / F.sum("n")).first()[0] or 1.0
    try:
        return _maximise("gamma_gamma", data, ["frequency", "monetary_value"], gamma_gamma_partials,
                         ["p", "q", "gamma"], [1.0, 2.0, max(mean_m, 1.0)], max_iter)
    finally:
        data.unpersist()


# -- predictions ----------------------------------------------------------------------------
def expected_purchases_np(t: float, x, tx, T, r: float, alpha: float, a: float, b: float):
    """E[purchases in (T, T + t] | x, t_x, T] (BG/NBD conditional expectation), vectorised."""
    from scipy.special import hyp2f1

    x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    return head / (1 + tail)


def p_alive(params: dict[str, float]) -> Column:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, tx, T = F.col("frequency"), F.col("recency"), F.col("T")
    odds = F.when(x > 0, a / (x + b - 1) * F.pow((T + alpha) / (tx + alpha), x + r)).otherwise(F.lit(0.0))
    return 1 / (1 + odds)


def expected_value(params: dict[str, float]) -> Column:
    """Gamma-Gamma conditional mean spend per purchase (population mean without repeats)."""
    p, q, gamma = (params[k] for k in ("p", "q", "gamma"))
    x, m = F.col("frequency"), F.col("monetary_value")
    population = p * gamma / (q - 1)
    return F.when((x > 0) & (m > 0), p * (gamma + x * m) / (p * x + q - 1)).otherwise(F.lit(population))


def _series_udf(func):
    """A scalar pandas UDF of three double Series (annotations set here: this module's are strings)."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    func.__annotations__ = {"x": pd.Series, "tx": pd.Series, "T": pd.Series, "return": pd.Series}
    return pandas_udf(func, "double")


def score(summary: DataFrame, bgnbd: dict[str, float], gg: dict[str, float], horizon_days: int,
          discount_rate: float) -> DataFrame:
    """Per person: p_alive, expected purchases over the horizon, expected spend per purchase, CLV.

    CLV sums, month by month (30-day steps up to the horizon), the purchases expected in that
    month times the expected spend, discounted at ``discount_rate`` a year.
    """
    import pandas as pd

    r, alpha, a, b = (bgnbd[k] for k in ("r", "alpha", "a", "b"))
    steps = list(range(30, horizon_days, 30)) + [horizon_days]
    monthly = (1 + discount_rate) ** (1 / 12) - 1

    def horizon(x, tx, T):
        return pd.Series(expected_purchases_np(horizon_days, x, tx, T, r, alpha, a, b))

    def discounted(x, tx, T):
        total, before = np.zeros(len(x)), np.zeros(len(x))
        for i, t in enumerate(steps, start=1):
            cumulative = expected_purchases_np(t, x, tx, T, r, alpha, a, b)
            total += (cumulative - before) / (1 + monthly) ** i
            before = cumulative
        return pd.Series(total)

    horizon_purchases, discounted_purchases = _series_udf(horizon), _series_udf(discounted)

    cols = [F.col("frequency"), F.col("recency"), F.col("T")]
    return summary.select(
        "*", p_alive(bgnbd).alias("p_alive"), horizon_purchases(*cols).alias("expected_purchases"),
        expected_value(gg).alias("expected_value"), discounted_purchases(*cols).alias("_discounted"),
    ).withColumn("clv", F.round(F.col("_discounted") * F.col("expected_value"), 2)).drop("_discounted")


def holdout_report(purchases: DataFrame, as_of: date, holdout_days: int, max_iter: int) -> tuple[DataFrame, Fit, dict]:
    """Fit on purchases up to as_of - holdout_days, predict the holdout, compare with what happened.

    Rows per calibration frequency (0..6, and 7 for 7+): persons, mean actual and mean predicted
    purchase days in the holdout.
    """
    import pandas as pd

    cal_end = as_of - timedelta(days=holdout_days)
    calibration = btyd_summary(purchases, cal_end).cache()
    fit = fit_bgnbd(calibration, max_iter)
    r, alpha, a, b = (fit.params[k] for k in ("r", "alpha", "a", "b"))

    predicted = _series_udf(lambda x, tx, T: pd.Series(expected_purchases_np(holdout_days, x, tx, T, r, alpha, a, b)))

    actual = (purchases.where((F.col("order_date") > F.lit(cal_end)) & (F.col("order_date") <= F.lit(as_of)))
              .groupBy("person_id").agg(F.countDistinct("order_date").cast("double").alias("actual")))
    rows = (calibration.join(actual, "person_id", "left").select(
        F.least(F.col("frequency"), F.lit(7.0)).cast("int").alias("calibration_frequency"),
        F.coalesce("actual", F.lit(0.0)).alias("actual"),
        predicted(F.col("frequency"), F.col("recency"), F.col("T")).alias("predicted")).cache())
    report = rows.groupBy("calibration_frequency").agg(
        F.count(F.lit(1)).alias("persons"), F.avg("actual").alias("mean_actual"), F.avg("predicted").alias("mean_predicted"))
    totals = rows.agg(F.sum("actual").alias("a"), F.sum("predicted").alias("p"),
                      F.avg(F.abs(F.col("actual") - F.col("predicted"))).alias("mae")).first()
    metrics = {"holdout_actual": float(totals.a or 0), "holdout_predicted": float(totals.p or 0),
               "holdout_mae": float(totals.mae or 0),
               "holdout_ratio": float(totals.p / totals.a) if totals.a else float("nan")}
    report = report.select(F.lit(cal_end).alias("calibration_end"), F.lit(as_of).alias("as_of_date"), "*")
    return report.localCheckpoint(), fit, metrics
