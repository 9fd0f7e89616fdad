"""Customer lifetime value: BG/NBD (transactions) and Gamma-Gamma (spend), fitted on Spark.

Summary per person (the buy-till-you-die definitions used by the ``lifetimes`` library, in days):
frequency = purchase days - 1 (repeat purchase periods), recency = last minus first purchase
day, T = as-of minus first purchase day, monetary_value = mean net value of the repeat purchase
days (0 without repeats).

The fit scales: the log-likelihood and its gradient are one pass of Spark over the distinct
(frequency, recency, T) combinations with their counts (BG/NBD) or the distinct (frequency,
monetary value) pairs of repeat buyers (Gamma-Gamma), each partition evaluating ln Gamma and
digamma (which Spark SQL lacks) vectorised with scipy and returning partial sums; only L-BFGS-B
on four (three) numbers runs on the driver. Up to ``DRIVER_FIT_ROWS`` distinct rows (a bound,
whatever the input size) the sums are evaluated on the driver with the same functions instead,
which saves a Spark job per optimiser step. Predictions need the Gauss hypergeometric function,
also a pandas UDF over scipy.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake import btyd as transactions
from memberlake.btyd import btyd_summary, expected_value  # noqa: F401  (re-exported: value's summary is BTYD's)

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
    # asymptotic covariance of the log-parameters (order of ``params``), None when not available
    log_covariance: np.ndarray | None = None

    @property
    def std_errors(self) -> dict[str, float]:
        return transactions.standard_errors(self.params, self.log_covariance)


# -- transaction models (BG/NBD, MBG/NBD, Pareto/NBD: memberlake/btyd.py) -----------------
bgnbd_partials = transactions.bgnbd_partials
expected_purchases_np = transactions.bgnbd_expected


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
    """``partials`` summed over ``data`` (with a count column ``n``), computed on the executors."""
    return spark_sums_at(data, columns, partials, [params], size)[0]


def spark_sums_at(data: DataFrame, columns: list[str], partials, points: list[np.ndarray], size: int) -> list[np.ndarray]:
    """``partials`` summed over ``data`` at each parameter point, all in one pass.

    ln Gamma and digamma are maths Spark SQL lacks, so each partition evaluates them vectorised
    (Arrow batches into numpy) and returns one row of partial sums per point; the driver adds
    them up. A point whose sums are not finite in some partition is NaN in the result: Arrow turns
    a NaN into a null and Spark's sum skips nulls, which would drop that partition's rows from the
    likelihood and make the optimiser walk into the region where it cannot be evaluated.
    """
    import pandas as pd

    names = [f"s{j}_{i}" for j in range(len(points)) for i in range(size)]
    flags = [f"bad{j}" for j in range(len(points))]
    cols = list(columns)
    fixed = [np.asarray(p, dtype=float) for p in points]

    def per_partition(batches):
        acc = np.zeros((len(fixed), size))
        for pdf in batches:
            arrays = [pdf[c].to_numpy(dtype=float) for c in cols]
            n = pdf["n"].to_numpy(dtype=float)
            for j, params in enumerate(fixed):
                acc[j] += partials(params, *arrays, n)
        bad = (~np.isfinite(acc)).any(axis=1).astype("int64")
        yield pd.DataFrame([[*np.nan_to_num(acc).ravel(), *bad]], columns=[*names, *flags])

    schema = ", ".join([*(f"{name} double" for name in names), *(f"{flag} bigint" for flag in flags)])
    row = (data.select(*cols, "n").mapInPandas(per_partition, schema)
           .agg(*[F.sum(c) for c in names], *[F.max(c) for c in flags]).first())
    flat = np.array([row[i] for i in range(len(names))], dtype=float).reshape(len(fixed), size)
    flat[np.array([bool(row[len(names) + j]) for j in range(len(fixed))])] = np.nan
    return list(flat)


# Distinct rows (``data`` of a fit) at or below this many are evaluated on the driver: the rows are
# bounded by this cap whatever the input size (a few MB), and each of the optimiser's 30-60
# evaluations then takes microseconds instead of a Spark job of about 0.2 s, which made the fits
# the value job's largest fixed cost (five fits with the holdout). Above it, Spark evaluates.
DRIVER_FIT_ROWS = 200_000


def _evaluators(data: DataFrame, columns: list[str], partials, size: int, driver_rows: int):
    """``(sums_at, where)``: the count-weighted sums at a list of parameter points, on the driver
    when ``data`` has at most ``driver_rows`` rows, else one Spark pass per call."""
    if data.limit(driver_rows + 1).count() <= driver_rows:
        rows = data.select(*columns, "n").toPandas()      # at most driver_rows rows
        arrays = [rows[c].to_numpy(dtype=float) for c in columns]
        n = rows["n"].to_numpy(dtype=float)
        return (lambda points: [np.asarray(partials(np.asarray(p, dtype=float), *arrays, n)) for p in points]), "driver"
    return (lambda points: spark_sums_at(data, columns, partials, points, size)), "spark"


def _maximise(model: str, data: DataFrame, columns: list[str], partials, names: list[str], x0: list[float],
              max_iter: int, upper: list[float | None] | None = None) -> Fit:
    """L-BFGS-B on log-parameters; each evaluation sums over ``data`` (on the driver up to
    ``DRIVER_FIT_ROWS`` distinct rows, else one pass of Spark)."""
    total = data.agg(F.sum("n")).first()[0]
    sums_at, where = _evaluators(data, columns, partials, len(names) + 1, DRIVER_FIT_ROWS)
    result, evaluations = transactions.maximise(lambda params: sums_at([params])[0], total, x0, max_iter, upper)
    params = dict(zip(names, np.exp(result.x).tolist(), strict=True))
    bounded = transactions.at_bound(params, upper)
    if bounded:
        log.warning("%s fit: %s at the upper bound %g: the rates such a shape mixes hardly vary between persons, "
                    "and the likelihood rises towards the limit where they do not vary at all; the fit stands for "
                    "that limit, and the standard errors and interval draws hold %s there", model,
                    ", ".join(bounded), transactions.SHAPE_LIMIT, ", ".join(bounded))
    # one more pass: the gradient at 2k points around the maximum gives the Hessian
    cov = transactions.log_covariance(sums_at, np.exp(result.x), fixed=tuple(names.index(b) for b in bounded))
    log.info("%s fit (%s): %s, log-likelihood %.4f, %d iterations (%d evaluations), %s; standard errors %s", model,
             where, params, -result.fun * total, result.nit, evaluations, result.message,
             transactions.standard_errors(params, cov) if cov is not None else "not available")
    message = str(result.message) + (f"; at the upper bound: {', '.join(bounded)}" if bounded else "")
    return Fit(model, params, float(-result.fun * total), int(result.nit), bool(result.success), int(total),
               message, log_covariance=cov)


def _few_partitions(data: DataFrame) -> DataFrame:
    """Cached with one partition per core: each optimiser step starts one Python task per partition."""
    return data.coalesce(data.sparkSession.sparkContext.defaultParallelism).cache()


def fit_transactions(summary: DataFrame, model: str = "bgnbd", max_iter: int = 200) -> Fit:
    """Parameters of a transaction model (``transactions.MODELS``) over distinct (x, t_x, T) with
    counts; time scales in the summary's unit."""
    spec = transactions.MODELS[model]
    data = _few_partitions(summary.groupBy("frequency", "recency", "T").agg(F.count(F.lit(1)).alias("n")))
    mean_t = data.agg(F.sum(F.col("T") * F.col("n")) / F.sum("n")).first()[0] or 1.0
    try:
        return _maximise(model, data, ["frequency", "recency", "T"], spec.partials, list(spec.parameters),
                         spec.start(mean_t), max_iter, spec.upper())
    finally:
        data.unpersist()


def fit_bgnbd(summary: DataFrame, max_iter: int = 200) -> Fit:
    """BG/NBD parameters r, alpha, a, b (alpha in the summary's time unit)."""
    return fit_transactions(summary, "bgnbd", max_iter)


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
def _series_udf(func):
    """A scalar pandas UDF of three double Series (annotations set here: this module's are strings)."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    func.__annotations__ = {"x": pd.Series, "tx": pd.Series, "T": pd.Series, "return": pd.Series}
    return pandas_udf(func, "double")


INTERVAL_COLUMNS = ("p_alive_lower", "p_alive_upper", "expected_purchases_lower", "expected_purchases_upper",
                    "clv_lower", "clv_upper")


@dataclass(frozen=True)
class Intervals:
    """Per-person intervals from parameter uncertainty: ``samples`` parameter draws from the fits'
    asymptotic distributions (normal in the log-parameters), central ``level`` quantiles."""
    gamma_gamma: Fit
    level: float = 0.9
    samples: int = 100
    seed: int = 42


def draw_parameters(fit: Fit, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` x k parameter draws from N(log θ̂, covariance), exponentiated."""
    mean = np.log(np.array(list(fit.params.values()), dtype=float))
    return np.exp(rng.multivariate_normal(mean, fit.log_covariance, size=samples))


def gamma_gamma_mean(x: np.ndarray, m: np.ndarray, p: float, q: float, gamma: float) -> np.ndarray:
    """Gamma-Gamma conditional mean spend (numpy twin of :func:`expected_value`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((x > 0) & (m > 0), p * (gamma + x * m) / (p * x + q - 1), p * gamma / (q - 1))


def central(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ``level`` quantiles over the draws (axis 0), non-finite draws left out."""
    clean = np.where(np.isfinite(draws), draws, np.nan)
    tail = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all draws non-finite: NaN bound
        low, high = np.nanquantile(clean, [tail, 1 - tail], axis=0)
    return low, high


def score(summary: DataFrame, fit: Fit | dict[str, float], gg: dict[str, float], horizon_days: int,
          discount_rate: float, intervals: Intervals | None = None) -> DataFrame:
    """Per person: p_alive, expected purchases over the horizon, expected spend per purchase, CLV,
    with the transaction model ``fit`` (a dict of parameters means BG/NBD); with ``intervals``
    (and covariances in both fits) also their lower/upper bounds, else those columns are null.

    The CLV bounds keep each person's discounting share (discounted over undiscounted expected
    purchases at the fitted parameters) fixed across draws: the monthly sum per draw would cost
    one more hypergeometric evaluation per month and draw.

    CLV sums, month by month (30-day steps up to the horizon), the purchases expected in that
    month times the expected spend, discounted at ``discount_rate`` a year.
    """
    import pandas as pd

    model, params = ("bgnbd", fit) if isinstance(fit, dict) else (fit.model, fit.params)
    spec = transactions.MODELS[model]
    values = [params[k] for k in spec.parameters]
    steps = list(range(30, horizon_days, 30)) + [horizon_days]
    monthly = (1 + discount_rate) ** (1 / 12) - 1

    def alive(x, tx, T):
        return pd.Series(spec.p_alive(x, tx, T, *values))

    def horizon(x, tx, T):
        return pd.Series(spec.expected(horizon_days, x, tx, T, *values))

    def discounted(x, tx, T):
        total, before = np.zeros(len(x)), np.zeros(len(x))
        for i, t in enumerate(steps, start=1):
            cumulative = spec.expected(t, x, tx, T, *values)
            total += (cumulative - before) / (1 + monthly) ** i
            before = cumulative
        return pd.Series(total)

    alive_udf, horizon_purchases, discounted_purchases = (_series_udf(f) for f in (alive, horizon, discounted))

    cols = [F.col("frequency"), F.col("recency"), F.col("T")]
    point = summary.select(
        "*", alive_udf(*cols).alias("p_alive"), horizon_purchases(*cols).alias("expected_purchases"),
        expected_value(gg).alias("expected_value"), discounted_purchases(*cols).alias("_discounted"),
    ).withColumn("clv", F.round(F.col("_discounted") * F.col("expected_value"), 2))
    ready = (intervals is not None and intervals.samples > 0 and isinstance(fit, Fit)
             and fit.log_covariance is not None and intervals.gamma_gamma.log_covariance is not None)
    if not ready:
        if intervals is not None and intervals.samples > 0:
            log.warning("CLV intervals left empty: a fit has no covariance (its likelihood is flat or the "
                        "maximum is on a boundary)")
        return point.select("*", *[F.lit(None).cast("double").alias(c) for c in INTERVAL_COLUMNS]).drop("_discounted")
    rng = np.random.default_rng(intervals.seed)
    draws = draw_parameters(fit, intervals.samples, rng)
    gg_draws = draw_parameters(intervals.gamma_gamma, intervals.samples, rng)
    level = intervals.level

    def bounds(x: pd.Series, tx: pd.Series, T: pd.Series, m: pd.Series, expected: pd.Series,
               discounted: pd.Series) -> pd.DataFrame:
        xs, txs, ts, ms = (v.to_numpy(dtype=float) for v in (x, tx, T, m))
        with np.errstate(all="ignore"):
            alive = np.stack([spec.p_alive(xs, txs, ts, *theta) for theta in draws])
            purchases = np.stack([spec.expected(horizon_days, xs, txs, ts, *theta) for theta in draws])
            spend = np.stack([gamma_gamma_mean(xs, ms, *g) for g in gg_draws])
            e = expected.to_numpy(dtype=float)
            share = np.where(e > 0, discounted.to_numpy(dtype=float) / np.where(e > 0, e, 1.0), 1.0)
        values = [*central(alive, level), *central(purchases, level), *central(purchases * share * spend, level)]
        return pd.DataFrame(dict(zip(INTERVAL_COLUMNS, values, strict=True)))

    from pyspark.sql.functions import pandas_udf

    bounds.__annotations__ = {**{k: pd.Series for k in ("x", "tx", "T", "m", "expected", "discounted")},
                              "return": pd.DataFrame}
    bounds_udf = pandas_udf(bounds, ", ".join(f"{c} double" for c in INTERVAL_COLUMNS))
    args = [*cols, F.col("monetary_value"), F.col("expected_purchases"), F.col("_discounted")]
    return point.select("*", bounds_udf(*args).alias("_b")).select(
        *[c for c in point.columns if c != "_discounted"],
        *[(F.round(F.col(f"_b.{c}"), 2) if c.startswith("clv") else F.col(f"_b.{c}")).alias(c)
          for c in INTERVAL_COLUMNS])


@dataclass(frozen=True)
class Holdout:
    """The calibration/holdout comparison of the transaction models: per model and calibration
    frequency (0..6, and 7 for 7+) persons, mean actual and mean predicted purchase days in the
    holdout (``report``); each model's calibration fit; per-person mean absolute error and total
    error (predicted minus actual purchases) per model; the chosen model."""
    report: DataFrame
    fits: dict[str, Fit]
    errors: dict[str, dict[str, float]]
    chosen: str

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: the chosen model's totals, and every candidate's errors."""
        mine = self.errors[self.chosen]
        metrics = {"holdout_actual": mine["actual"], "holdout_predicted": mine["predicted"],
                   "holdout_mae": mine["mae"],
                   "holdout_ratio": mine["predicted"] / mine["actual"] if mine["actual"] else float("nan")}
        for model, errors in self.errors.items():
            metrics[f"{model}.holdout_mae"] = errors["mae"]
            metrics[f"{model}.holdout_total_error"] = errors["total_error"]
        return metrics


def choose(errors: dict[str, dict[str, float]], candidates: list[str]) -> str:
    """The candidate with the lowest per-person mean absolute error on the holdout (the first
    listed on a tie); a model whose fit failed to give finite predictions never wins."""
    finite = [m for m in candidates if np.isfinite(errors[m]["mae"])]
    if not finite:
        raise ValueError("CLV: no transaction model gave finite holdout predictions")
    return min(finite, key=lambda m: (round(errors[m]["mae"], 12), candidates.index(m)))


def holdout_report(purchases: DataFrame, as_of: date, holdout_days: int, max_iter: int,
                   candidates: list[str] | None = None) -> Holdout:
    """Fit every candidate model on purchases up to as_of - holdout_days, predict the holdout,
    compare with what happened, and choose the model that predicted it best."""
    import pandas as pd

    candidates = list(candidates or ["bgnbd"])
    cal_end = as_of - timedelta(days=holdout_days)
    calibration = btyd_summary(purchases, cal_end).cache()
    fits = {m: fit_transactions(calibration, m, max_iter) for m in candidates}

    def predictor(model: str):
        spec, fit = transactions.MODELS[model], fits[model]
        values = [fit.params[k] for k in spec.parameters]
        return _series_udf(lambda x, tx, T: pd.Series(spec.expected(holdout_days, x, tx, T, *values)))

    actual = (purchases.where((F.col("order_date") > F.lit(cal_end)) & (F.col("order_date") <= F.lit(as_of)))
              .groupBy("person_id").agg(F.countDistinct("order_date").cast("double").alias("actual")))
    cols = [F.col("frequency"), F.col("recency"), F.col("T")]
    rows = calibration.join(actual, "person_id", "left").select(
        F.least(F.col("frequency"), F.lit(7.0)).cast("int").alias("calibration_frequency"),
        F.coalesce("actual", F.lit(0.0)).alias("actual"),
        *[predictor(m)(*cols).alias(f"p_{m}") for m in candidates]).cache()
    totals = rows.agg(F.count(F.lit(1)).alias("persons"), F.sum("actual").alias("actual"), *[
        agg for m in candidates for agg in (F.sum(f"p_{m}").alias(f"sum_{m}"),
                                            F.avg(F.abs(F.col("actual") - F.col(f"p_{m}"))).alias(f"mae_{m}"))]).first()
    actual_total = float(totals["actual"] or 0)
    errors = {m: {"mae": float("nan") if totals[f"mae_{m}"] is None else float(totals[f"mae_{m}"]),
                  "predicted": float(totals[f"sum_{m}"] or 0), "actual": actual_total,
                  "total_error": float(totals[f"sum_{m}"] or 0) - actual_total}
              for m in candidates}
    chosen = choose(errors, candidates)
    per_model = rows.select("calibration_frequency", "actual", F.explode(F.array(*[
        F.struct(F.lit(m).alias("model"), F.col(f"p_{m}").alias("predicted")) for m in candidates])).alias("p"))
    report = (per_model.groupBy("p.model", "calibration_frequency").agg(
        F.count(F.lit(1)).alias("persons"), F.avg("actual").alias("mean_actual"), F.avg("p.predicted").alias("mean_predicted"))
        .select(F.lit(cal_end).alias("calibration_end"), F.lit(as_of).alias("as_of_date"), "model",
                "calibration_frequency", "persons", "mean_actual", "mean_predicted"))
    for m in candidates:
        log.info("CLV holdout %s: mean absolute error %.4f per person, predicted %.1f vs actual %.1f purchases",
                 m, errors[m]["mae"], errors[m]["predicted"], actual_total)
    report = report.localCheckpoint()
    rows.unpersist()
    calibration.unpersist()
    return Holdout(report, fits, errors, chosen)
