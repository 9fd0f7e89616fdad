"""Buy-till-you-die churn features, point in time: at every as-of date a transaction model is
fitted on the purchase history up to that date only, and each person gets its ``p_alive`` and
the purchases it expects over the churn horizon.

Why: a BTYD model reads a person's recency against their own frequency and the population's
drop-out, which a classifier over raw recency and counts only approximates; on CDNOW its 90-day
expectation alone ranks churners about as well as a tuned classifier. As features the model can
add what it knows (browsing, reviews, channel) on top.

The fits run on the executors, one task per as-of date (``applyInPandas`` over the distinct
(x, t_x, T) rows of that date with their counts); only the fitted parameters (a few numbers per
date) reach the driver. Scoring is a pandas UDF with the parameters of each row's date.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from memberlake import btyd

log = logging.getLogger(__name__)

KEYS = ["person_id", "as_of_date"]
COLUMNS = ["btyd_p_alive", "btyd_expected_purchases"]
_PARAMS = ["_q0", "_q1", "_q2", "_q3"]


def fit_per_date(summaries: DataFrame, model: str, max_iter: int) -> DataFrame:
    """(as_of_date, _q0.._q3, log_likelihood, converged, persons): ``model`` fitted on each date's
    summary. Parameters are null when the fit gives no finite likelihood (too little history)."""
    names = btyd.MODELS[model].parameters

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        day = pdf["as_of_date"].iloc[0]
        try:
            params, ll, converged = btyd.fit_counts(model, pdf["frequency"], pdf["recency"], pdf["T"], pdf["n"],
                                                    max_iter)
            values = [params[k] for k in names]
        except (ValueError, FloatingPointError, ZeroDivisionError):
            values, ll, converged = [float("nan")] * len(names), float("nan"), False
        if not (np.isfinite(ll) and np.all(np.isfinite(values))):
            values, converged = [float("nan")] * len(names), False
        return pd.DataFrame([[day, *values, ll, converged, float(pdf["n"].sum())]],
                            columns=["as_of_date", *_PARAMS, "log_likelihood", "converged", "persons"])

    counts = summaries.groupBy("as_of_date", "frequency", "recency", "T").agg(F.count(F.lit(1)).cast("double").alias("n"))
    schema = ("as_of_date date, " + ", ".join(f"{c} double" for c in _PARAMS)
              + ", log_likelihood double, converged boolean, persons double")
    return counts.groupBy("as_of_date").applyInPandas(fit, schema)


def _scorer(model: str, horizon_days: int):
    """Pandas UDF (x, t_x, T, q0..q3) -> struct(p_alive, expected): each batch is split by the
    parameters of its rows' as-of dates; rows without parameters stay null."""
    spec = btyd.MODELS[model]

    @pandas_udf("p_alive double, expected double")
    def score(x: pd.Series, tx: pd.Series, T: pd.Series, q0: pd.Series, q1: pd.Series, q2: pd.Series,
              q3: pd.Series) -> pd.DataFrame:
        out = pd.DataFrame({"p_alive": np.nan, "expected": np.nan}, index=x.index)
        frame = pd.DataFrame({"q0": q0, "q1": q1, "q2": q2, "q3": q3})
        with np.errstate(all="ignore"):
            for params, index in frame.groupby(["q0", "q1", "q2", "q3"]).indices.items():
                args = (x.to_numpy(float)[index], tx.to_numpy(float)[index], T.to_numpy(float)[index])
                out.iloc[index, 0] = spec.p_alive(*args, *params)
                out.iloc[index, 1] = spec.expected(float(horizon_days), *args, *params)
        return out.where(np.isfinite(out))

    return score


def btyd_features(purchases: DataFrame, dates: DataFrame, model: str, horizon_days: int,
                  max_iter: int = 200) -> DataFrame:
    """(person_id, as_of_date, btyd_p_alive, btyd_expected_purchases) for every person with a
    purchase on or before each date; both null on a date whose fit failed."""
    summaries = btyd.summaries_at(purchases, dates).localCheckpoint()
    fits = fit_per_date(summaries, model, max_iter).collect()  # one row per as-of date
    for row in sorted(fits, key=lambda r: r["as_of_date"]):
        values = [row[c] for c in _PARAMS]
        if row["converged"]:
            log.info("churn features: %s fit at %s on %d persons: %s", model, row["as_of_date"], row["persons"],
                     dict(zip(btyd.MODELS[model].parameters, values, strict=True)))
        else:
            log.warning("churn features: %s fit at %s on %d persons did not converge (%s); its BTYD features are "
                        "%s", model, row["as_of_date"], row["persons"], values,
                        "kept" if np.all(np.isfinite(values)) else "left neutral")
    spark = summaries.sparkSession
    params = spark.createDataFrame([(r["as_of_date"], *[r[c] for c in _PARAMS]) for r in fits],
                                   "as_of_date date, " + ", ".join(f"{c} double" for c in _PARAMS))
    scored = summaries.join(F.broadcast(params), "as_of_date").select(
        *KEYS, _scorer(model, horizon_days)("frequency", "recency", "T", *_PARAMS).alias("s"))
    return scored.select(*KEYS, F.col("s.p_alive").alias(COLUMNS[0]), F.col("s.expected").alias(COLUMNS[1]))
