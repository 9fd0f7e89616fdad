"""Fitting: statsforecast's models per series, in parallel inside Spark.

``fit_all`` groups series into buckets of about ``series_per_group`` (``applyInPandas``: one task
fits a bucket, no driver loop) and, per bucket, runs every candidate model of a series' family at
each backtest cutoff (trained only on periods up to the cutoff) and once more on the whole
history for the forecast. Candidates (names as statsforecast's):

- continuous (smooth or erratic): AutoETS (non-seasonal: statsforecast's ETS takes seasons up to
  24 periods), AutoTheta and MSTL (trend by AutoETS) with the season when the history allows, and
  ``MSTL_log``: MSTL on log1p(y), a season proportional to the level (:func:`_forecast`);
- intermittent (intermittent or lumpy): CrostonSBA, TSB, IMAPA, ADIDA, with conformal intervals
  from their own rolling errors (they have no distributional ones) when the history allows;
- ``Combination``: the mean of the family's own models above except ``MSTL_log`` (forecast
  combinations are the robust choice of the M competitions), scored in the backtest like the
  others. ``MSTL_log`` is left out because it skips series with negative weeks, and a
  combination should mean the same models on every series;
- baselines for every backtested series: SeasonalNaive (seasonal series), Naive, HistoricAverage.

A fallback series (too short for a backtest) gets its fallback model only. A model that fails
on a series is left out for it (logged by the worker); the others still compete.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.forecast.pattern import SEASON_EXTRA

log = logging.getLogger(__name__)

LEVELS = (80, 95)
OUTPUT = ("measure string, series_id string, model string, window int, cutoff int, ds int, forecast double, "
          "lo_80 double, hi_80 double, lo_95 double, hi_95 double")
CONTINUOUS = ("AutoETS", "AutoTheta", "MSTL", "MSTL_log")
SEASONAL_ONLY = ("MSTL", "MSTL_log")
LOG_MODELS = ("MSTL_log",)
INTERMITTENT = ("CrostonSBA", "TSB", "IMAPA", "ADIDA")
BASELINES = ("SeasonalNaive", "Naive", "HistoricAverage")
COMBINATION = "Combination"
OUTPUT_COLUMNS = [c.split(" ")[0] for c in OUTPUT.split(", ")]
VALUES = ["forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
_LONG = ["unique_id", "model", "ds", *VALUES]
ORDER = (COMBINATION, *CONTINUOUS, *INTERMITTENT, *BASELINES)   # tie-break: earlier wins


def candidates(family: str, seasonal: bool) -> list[str]:
    """Candidate model names for a backtested series."""
    own = [m for m in (CONTINUOUS if family == "continuous" else INTERMITTENT) if seasonal or m not in SEASONAL_ONLY]
    return own + [m for m in BASELINES if seasonal or m != "SeasonalNaive"]


def build(name: str, season: int, seasonal: bool, horizon: int, n: int):
    """A statsforecast model named ``name`` (its alias), for a training series of ``n`` periods."""
    from statsforecast import models as sm
    from statsforecast.utils import ConformalIntervals

    m = season if seasonal else 1
    conformal = ConformalIntervals(h=horizon, n_windows=2) if n >= 2 * horizon + 1 else None

    def mstl():   # MSTL_log is the same model, fitted on log1p(y) by _forecast
        return sm.MSTL(season_length=season, trend_forecaster=sm.AutoETS(model="ZZN"), alias=name)

    makers = {
        "AutoETS": lambda: sm.AutoETS(season_length=1, alias=name),
        "AutoTheta": lambda: sm.AutoTheta(season_length=m, alias=name),
        "MSTL": mstl,
        "MSTL_log": mstl,
        "CrostonSBA": lambda: sm.CrostonSBA(alias=name, prediction_intervals=conformal),
        "TSB": lambda: sm.TSB(alpha_d=0.1, alpha_p=0.1, alias=name, prediction_intervals=conformal),
        "IMAPA": lambda: sm.IMAPA(alias=name, prediction_intervals=conformal),
        "ADIDA": lambda: sm.ADIDA(alias=name, prediction_intervals=conformal),
        "SeasonalNaive": lambda: sm.SeasonalNaive(season_length=season, alias=name),
        "Naive": lambda: sm.Naive(alias=name),
        "HistoricAverage": lambda: sm.HistoricAverage(alias=name),
    }
    return makers[name]()


def _run(train: pd.DataFrame, names: list[str], season: int, seasonal: bool, horizon: int) -> pd.DataFrame:
    """Forecasts of every model in ``names`` for the series in ``train`` (unique_id, ds, y), long:
    unique_id, model, ds, forecast, lo_80, hi_80, lo_95, hi_95. A model that fails on the batch is
    retried series by series, and left out where it fails."""
    out = []
    for name in names:
        try:
            out.append(_forecast(train, name, season, seasonal, horizon))
        except Exception:   # noqa: BLE001 - one series or model failing must not stop the others
            for uid, one in train.groupby("unique_id"):
                try:
                    out.append(_forecast(one, name, season, seasonal, horizon))
                except Exception as exc:   # noqa: BLE001
                    log.warning("forecast: %s failed on %s: %s", name, uid, exc)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=_LONG)


def combination(got: pd.DataFrame, members: list[str]) -> pd.DataFrame:
    """``Combination``: per series and period the mean of the family's models (not the baselines)
    that forecast it, bounds averaged too (quantile averaging). Only where every member forecast."""
    mine = got[got["model"].isin(members)]
    if mine.empty or len(members) < 2:
        return pd.DataFrame(columns=_LONG)
    grouped = mine.groupby(["unique_id", "ds"])
    mean = grouped[VALUES].mean()
    complete = grouped["model"].nunique() == len(members)
    return mean[complete].reset_index().assign(model=COMBINATION)[_LONG]


def _forecast(train: pd.DataFrame, name: str, season: int, seasonal: bool, horizon: int) -> pd.DataFrame:
    """Forecasts of model ``name`` for the series in ``train``, long (``_LONG``).

    A model in ``LOG_MODELS`` is fitted on log1p(y), only for series with no negative period
    (others are skipped). Why: an additive season learnt while the level grew carries the smaller
    peaks of earlier years; on the log scale the season is a ratio to the level. Its point forecast
    is expm1(f + s²/2), with s² the series' in-sample residual variance on the log scale: a plain
    expm1(f) is the median, low by about s²/2 (the lognormal mean; Hyndman and Athanasopoulos'
    bias-adjusted back-transform). Bounds are expm1 of the log-scale bounds: quantiles carry over.
    """
    from statsforecast import StatsForecast

    log_scale = name in LOG_MODELS
    if log_scale:
        train = train[train.groupby("unique_id")["y"].transform("min") >= 0]
        if train.empty:
            return pd.DataFrame(columns=_LONG)
        train = train.assign(y=np.log1p(train["y"].astype(float)))
    n = int(train.groupby("unique_id").size().min())
    sf = StatsForecast([build(name, season, seasonal, horizon, n)], freq=1)
    frame = _long(sf.forecast(df=train, h=horizon, level=list(LEVELS), fitted=log_scale), name)
    if log_scale:
        fitted = sf.forecast_fitted_values()
        variance = (fitted["y"] - fitted[name]).groupby(fitted["unique_id"]).var()
        frame["forecast"] = np.expm1(frame["forecast"] + frame["unique_id"].map(variance).fillna(0.0) / 2)
        for c in VALUES[1:]:
            frame[c] = np.expm1(frame[c])
    return frame


def _long(got: pd.DataFrame, name: str) -> pd.DataFrame:
    got = got.reset_index() if "unique_id" not in got.columns else got
    cols = {name: "forecast", **{f"{name}-{side}-{lv}": f"{side}_{lv}" for lv in LEVELS for side in ("lo", "hi")}}
    frame = got.rename(columns=cols)
    for c in cols.values():
        if c not in frame.columns:
            frame[c] = float("nan")
    return frame.assign(model=name)[_LONG]


def fit_group(pdf: pd.DataFrame, *, cutoffs: list[int], horizon: int, season: int, fallback: str,
              min_train: int = 2) -> pd.DataFrame:
    """One bucket of series: backtest forecasts at each cutoff (windows 1..) and the forecast from
    the whole history (window 0). A series enters a window when it has ``min_train`` periods (a
    season and two more for a seasonal one) up to the cutoff; all its candidates share its windows."""
    import warnings

    warnings.filterwarnings("ignore")
    pdf = pdf.assign(unique_id=pdf["measure"] + "\x1f" + pdf["series_id"])
    frames = []
    for (status, family, seasonal), part in pdf.groupby(["status", "family", "seasonal"], dropna=False):
        data = part[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"])
        seasonal = bool(seasonal)
        if status == "fallback":
            names, windows = [fallback], [(0, None)]
        else:
            names, windows = candidates(family, seasonal), [(0, None), *[(i + 1, c) for i, c in enumerate(cutoffs)]]
        for window, cutoff in windows:
            train = data if cutoff is None else data[data["ds"] <= cutoff]
            if cutoff is not None:
                sizes = train.groupby("unique_id")["ds"].transform("size")
                train = train[sizes >= (season + SEASON_EXTRA if seasonal else min_train)]
            if train.empty:
                continue
            got = _run(train, names, season, seasonal, horizon)
            if status != "fallback":
                members = [n for n in names if n not in BASELINES and n not in LOG_MODELS]
                got = pd.concat([got, combination(got, members)], ignore_index=True)
            frames.append(got.assign(window=window, cutoff=-1 if cutoff is None else cutoff))
    if not frames:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    keys = out["unique_id"].str.split("\x1f", n=1, expand=True)
    out["measure"], out["series_id"] = keys[0], keys[1]
    out["cutoff"] = out["cutoff"].where(out["cutoff"] >= 0, None)
    return out[OUTPUT_COLUMNS].astype({"window": "int32", "ds": "int32"})



def fit_all(history: DataFrame, profile: DataFrame, *, cutoffs: list[int], horizon: int, season: int,
            fallback: str, series_per_group: int, series: int, min_train: int = 2) -> DataFrame:
    """Every candidate's backtest and final forecasts for the fitted series (status backtest or
    fallback), as rows of ``OUTPUT``; ``series`` (their number) sizes the buckets."""
    groups = max(1, math.ceil(series / series_per_group))
    fitted = profile.where(F.col("status").isin("backtest", "fallback")).select(
        "measure", "series_id", "status", "family", "seasonal",
        F.pmod(F.xxhash64("measure", "series_id"), F.lit(groups)).alias("_group"))
    rows = history.join(fitted, ["measure", "series_id"]).select(
        "_group", "measure", "series_id", "status", "family", "seasonal", "ds", "y")

    def apply(pdf: pd.DataFrame) -> pd.DataFrame:
        return fit_group(pdf.drop(columns="_group"), cutoffs=cutoffs, horizon=horizon, season=season,
                         fallback=fallback, min_train=min_train)

    return rows.repartition(groups, "_group").groupBy("_group").applyInPandas(apply, OUTPUT)
