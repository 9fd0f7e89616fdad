"""Forecasts on the generator, on CDNOW, and at scale — each beside the peer a user would pick.

- ``generator``: a lakehouse from ``memberlake pipeline`` on generated data (orders carry a
  year-end peak). ``memberlake forecast --as-of A`` with A = 13 weeks before the last complete
  week, so the horizon covers the peak; a second run at the last date gives the actuals. Per
  series and in total: out-of-sample MAE of the chosen models against seasonal naive (same scale,
  so the MASE comparison), the share of series where the chosen model wins, the peak weeks'
  forecast against what happened. Generate with ``--set generate.demand=steady``: the default
  shape (``cutoff_study``) plants a fall of about a third in weekly demand in the months before
  the churn cutoff, which is where this origin falls (docs/forecast.md, "Measured").
- ``cdnow``: the full CDNOW log shipped inside ``lifetimes`` (23,570 customers who first bought in
  the first 12 weeks of 1997). Weekly repeat purchases (purchase days after each customer's first)
  of weeks 1-39 forecast over weeks 40-78 by memberlake's demand models (chosen on their own
  rolling backtest) and by the BG/NBD expectation fitted on the same 39 weeks, against the actual —
  Fader, Hardie and Lee's tracking plot.
- ``cdnow-intervals``: the same weekly series, 13 weeks ahead from several origins by the job's
  demand step, once with the models' own intervals and once calibrated on the backtest
  (``forecast.intervals``): the share of the following weeks inside each, and their widths.
- ``scale``: N synthetic weekly series x 3 years (smooth seasonal and intermittent), fit +
  rolling backtest (3 windows of 13 weeks) + forecast on ``local[2]``, against statsforecast's own
  single-node run (``n_jobs=2``) of the same models on the same series; series/s and peak memory.

- ``candidates``: after ``generator`` on the same lakehouse, the job's backtest and choice
  replayed offline at the same origin with extra candidates the job does not fit (seasonal naive
  scaled by the recent level over k weeks; MSTL on log1p, i.e. a multiplicative season): whether
  any of them would be chosen and would then beat seasonal naive out of sample.

    memberlake generate --scale 0.02 --seed 42 --set generate.start_date=2022-01-01 \
        --set generate.demand=steady --out LANDING
    memberlake pipeline --only ingest,clean,identity,value --landing LANDING --lakehouse L
    python bench/forecast.py generator --lakehouse L
    python bench/forecast.py candidates --lakehouse L
    python bench/forecast.py cdnow
    python bench/forecast.py cdnow-intervals
    python bench/forecast.py scale --series 10000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import summary as bench_summary  # noqa: E402

COMMON = ["--set", "privacy.require_key=false"]


def spark_and_lake(lakehouse: str | None = None):
    from memberlake.io.delta import Lakehouse
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    settings = with_overrides(load_settings("local"), privacy={"require_key": False})
    return get_spark(settings), (Lakehouse(lakehouse) if lakehouse else None)


# -- generator ------------------------------------------------------------------------------
def generator(lakehouse: str, horizon: int, overrides: tuple[str, ...] = (), demand: str = "steady") -> str:
    """The run above; ``demand`` (the ``generate.demand`` the landing zone was made with) labels
    the summary row."""
    from pyspark.sql import functions as F

    from memberlake.forecast.series import GRAINS, last_complete_period

    spark, lake = spark_and_lake(lakehouse)
    last = spark.read.format("delta").load(f"{lakehouse}/silver_orders").agg(F.max("order_ts")).first()[0].date()
    end = last_complete_period(last, GRAINS["category_week"]) + timedelta(days=6)
    as_of = end - timedelta(weeks=horizon)
    for day in (as_of, end):
        subprocess.run([sys.executable, "-m", "memberlake.cli", "forecast", "--lakehouse", lakehouse,
                        "--as-of", day.isoformat(), "--horizon-weeks", str(horizon), *COMMON,
                        *[a for o in overrides for a in ("--set", o)]], check=True)
    fc = lake.read("demand_forecast").where(F.col("as_of_date") == F.lit(as_of)).toPandas()
    hist = lake.read("demand_history").where(F.col("as_of_date") == F.lit(end)).toPandas()
    series = lake.read("forecast_series").where(F.col("as_of_date") == F.lit(as_of)).toPandas()
    key = ["measure", "level", "series_id"]
    actual = hist.rename(columns={"y": "actual"})[[*key, "period", "actual"]]
    lagged = hist.assign(period=hist["period"] + timedelta(weeks=52)).rename(columns={"y": "snaive"})[
        [*key, "period", "snaive"]]
    both = fc.merge(actual, on=[*key, "period"]).merge(lagged, on=[*key, "period"], how="left")
    both["snaive"] = both["snaive"].fillna(0.0)
    both["e_model"] = (both["forecast"] - both["actual"]).abs()
    both["e_snaive"] = (both["snaive"] - both["actual"]).abs()
    both["in80"] = (both["actual"] >= both["lo_80"]) & (both["actual"] <= both["hi_80"])
    both["in95"] = (both["actual"] >= both["lo_95"]) & (both["actual"] <= both["hi_95"])
    per = both.groupby(key).agg(model=("e_model", "mean"), snaive=("e_snaive", "mean"), weeks=("period", "count"),
                                c80=("in80", "mean"), c95=("in95", "mean")).reset_index()
    lines = [f"### Forecast on the generator ({lakehouse}): as-of {as_of}, {horizon} weeks ahead, actuals to {end}"
             f"{' (' + ', '.join(overrides) + ')' if overrides else ''}\n",
             "Out-of-sample MAE per week (MASE ratio = model MAE / seasonal-naive MAE, same scale):\n",
             "| measure | level | series | weeks | chosen | MAE chosen | MAE seasonal naive | ratio | 80% cover | 95% cover |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    chosen = dict(zip(zip(series["measure"], series["series_id"], strict=True), series["model"], strict=True))
    for r in per.sort_values(["measure", "level", "series_id"]).itertuples():
        model = chosen.get((r.measure, r.series_id), "bottom_up") if r.level == "series" else "bottom_up"
        lines.append(f"| {r.measure} | {r.level} | {r.series_id} | {r.weeks} | {model} | {r.model:.1f} | "
                     f"{r.snaive:.1f} | {r.model / r.snaive if r.snaive else float('nan'):.3f} | {r.c80:.2f} | {r.c95:.2f} |")
    s = per[per["level"] == "series"]
    beat = s["model"] < s["snaive"]
    share = float(beat.mean())
    wins = f"{int(beat.sum())} of {len(s)}"
    lines.append(f"\nChosen models beat seasonal naive out of sample for {share:.0%} of series ({wins}).")
    totals = per[per["level"] == "total"].set_index("measure")
    ratios = ", ".join(f"{m} {totals.loc[m, 'model'] / totals.loc[m, 'snaive']:.2f}" for m in sorted(totals.index)
                       if totals.loc[m, "snaive"])
    peak = both[(both["level"] == "total") & both["period"].apply(lambda p: p.month == 12 or (p.month == 11 and p.day >= 20))]
    before = both[(both["level"] == "total") & both["period"].apply(lambda p: p.month == 10)]
    for measure in sorted(both["measure"].unique()):
        pk, bf = peak[peak["measure"] == measure], before[before["measure"] == measure]
        lines.append(f"Peak weeks (20 Nov - Dec), total {measure}: forecast {pk['forecast'].sum():,.0f} vs actual "
                     f"{pk['actual'].sum():,.0f} (seasonal naive {pk['snaive'].sum():,.0f}); October weekly mean: "
                     f"forecast {bf['forecast'].mean():,.0f}, actual {bf['actual'].mean():,.0f}.")
    bench_summary.record(
        "forecast_generator", f"forecast on the generator ({demand} demand), {horizon} weeks over the year-end peak",
        f"chosen beat seasonal naive for {wins} series; total MAE ratio {ratios}", "seasonal naive, same weeks",
        ratios, "most series and the total below 1", lines[0].strip().lstrip("# "))
    return "\n".join(lines) + "\n"


# -- extra candidates, replayed offline --------------------------------------------------------
LEVEL_WEEKS = (4, 8, 13, 26)


def level_seasonal_naive(y, horizon: int, season: int, k: int):
    """Last season's values for the periods ahead, times the ratio of the last ``k`` periods' sum
    to the same ``k`` periods a season earlier (the year-over-year level)."""
    import numpy as np

    n = len(y)
    if n < season + k:
        return np.full(horizon, np.nan)
    base = y[n - season:n - season + horizon]
    before = y[n - season - k:n - season].sum()
    return base * (y[n - k:].sum() / before if before > 0 else np.nan)


def candidates(lakehouse: str, horizon: int) -> str:
    """The job's candidates (``fit_group``) plus the extra ones, at the backtest cutoffs the job
    uses and at the origin; the choice is the lowest pooled backtest MAE, as in the job, made
    from each pool in turn; out of sample = the ``horizon`` periods after the origin."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from memberlake.forecast.build import cutoffs
    from memberlake.forecast.models import _run, fit_group
    from memberlake.forecast.pattern import ADI_CUT
    from memberlake.forecast.series import GRAINS, ds_of, last_complete_period
    from memberlake.settings import load_settings

    spark, lake = spark_and_lake(lakehouse)
    cfg = load_settings("local").forecast
    season, grain = cfg.season(), GRAINS[cfg.grain]
    last = spark.read.format("delta").load(f"{lakehouse}/silver_orders").agg(F.max("order_ts")).first()[0].date()
    end = last_complete_period(last, grain) + timedelta(days=6)
    as_of = end - timedelta(weeks=horizon)
    hist = lake.read("demand_history").where((F.col("as_of_date") == F.lit(end)) & (F.col("level") == "series")).toPandas()
    series = lake.read("forecast_series").where(F.col("as_of_date") == F.lit(as_of)).toPandas()
    hist["ds"] = hist["period"].map(lambda d: ds_of(d, grain))
    origin = ds_of(last_complete_period(as_of, grain), grain)
    cuts = cutoffs(origin, cfg)
    fitted = series[series["status"] == "backtest"][["measure", "series_id", "adi", "seasonal"]]
    fitted["family"] = np.where(fitted["adi"] >= ADI_CUT, "intermittent", "continuous")   # the job's own cut
    data = hist.merge(fitted, on=["measure", "series_id"])[["measure", "series_id", "family", "seasonal", "ds", "y"]]
    data["uid"] = data["measure"] + "|" + data["series_id"]
    train = data[data["ds"] <= origin].assign(status="backtest")
    job = fit_group(train.drop(columns="uid"), cutoffs=cuts, horizon=horizon, season=season, fallback="Naive")
    job["uid"] = job["measure"] + "|" + job["series_id"]
    frames = [job[["uid", "model", "window", "ds", "forecast"]]]
    wide = data.pivot(index="ds", columns="uid", values="y").fillna(0.0)
    for window, cut in [(0, origin), *[(i + 1, c) for i, c in enumerate(cuts)]]:
        ahead = list(range(cut + 1, cut + 1 + horizon))
        past = wide.loc[:cut]
        for k in LEVEL_WEEKS:
            for uid in wide.columns:
                frames.append(pd.DataFrame({"uid": uid, "model": f"LevelSeasonalNaive{k}", "window": window,
                                            "ds": ahead, "forecast": level_seasonal_naive(past[uid].to_numpy(), horizon, season, k)}))
        logged = data[data["ds"] <= cut].rename(columns={"uid": "unique_id"})[["unique_id", "ds", "y"]]
        logged = logged.assign(y=np.log1p(logged["y"].clip(lower=0)))
        got = _run(logged, ["MSTL"], season, True, horizon)
        frames.append(got.rename(columns={"unique_id": "uid"}).assign(
            model="MSTL_log", window=window, forecast=np.expm1(got["forecast"]).clip(lower=0))[
            ["uid", "model", "window", "ds", "forecast"]])
    allf = pd.concat(frames, ignore_index=True)
    actual = data[["uid", "ds", "y"]]
    scored = allf.merge(actual, on=["uid", "ds"])
    scored["ae"] = (scored["forecast"].clip(lower=0) - scored["y"]).abs()
    backtest = scored[scored["window"] > 0].groupby(["uid", "model"])["ae"].mean().unstack()
    ahead = scored[scored["window"] == 0].groupby(["uid", "model"])["ae"].mean().unstack()
    job_models = list(job["model"].unique())
    extras = [f"LevelSeasonalNaive{k}" for k in LEVEL_WEEKS] + ["MSTL_log"]
    lines = [f"### Extra forecast candidates replayed at the generator's origin ({lakehouse}): as-of {as_of}, "
             f"{horizon} weeks ahead, backtest cutoffs {cuts}\n",
             "| candidates | beats seasonal naive out of sample, alone | chosen (series) | chosen beat seasonal naive |",
             "|---|---:|---:|---:|"]
    for extra in [None, *extras]:
        pool = job_models + ([extra] if extra else [])
        chosen = backtest[pool].idxmin(axis=1)
        wins = sum(ahead.loc[u, chosen[u]] < ahead.loc[u, "SeasonalNaive"] for u in chosen.index)
        alone = "" if extra is None else f"{(ahead[extra] < ahead['SeasonalNaive']).sum()} of {len(ahead)}"
        picked = "" if extra is None else str(int((chosen == extra).sum()))
        lines.append(f"| the job's{' + ' + extra if extra else ''} | {alone} | {picked} | {wins} of {len(chosen)} |")
    return "\n".join(lines) + "\n"


# -- CDNOW ----------------------------------------------------------------------------------
def cdnow_weekly(weeks: int):
    """CDNOW's start (1997-01-01), its purchase days (customer, order_date, net) and the weekly
    repeat purchases (purchase days after each customer's first) of weeks 1..``weeks``."""
    import lifetimes.datasets
    import pandas as pd

    master = Path(lifetimes.datasets.__file__).parent / "CDNOW_master.txt"
    df = pd.read_csv(master, sep=r"\s+", header=0, names=["customer", "day", "cds", "dollars"], dtype=str)
    df["order_date"] = pd.to_datetime(df["day"], format="%Y%m%d").dt.date
    df["net"] = df["dollars"].astype(float)
    start = date(1997, 1, 1)
    days = df.groupby(["customer", "order_date"], as_index=False)["net"].sum()
    first = days.groupby("customer")["order_date"].transform("min")
    repeat = days[days["order_date"] > first]
    week = repeat["order_date"].apply(lambda d: (d - start).days // 7 + 1)
    return start, days, week.value_counts().reindex(range(1, weeks + 1), fill_value=0).sort_index()


CDNOW_ORIGINS = tuple(range(47, 66, 2))   # from week 47 the series has the default backtest's 39 weeks + 8


def cdnow_intervals(origins: tuple[int, ...] = CDNOW_ORIGINS, horizon: int = 13) -> str:
    """The demand job's intervals on real data: CDNOW's weekly repeat purchases forecast 13 weeks
    ahead from several origins by the job's demand step (backtest, choice, bounds), once with the
    models' own intervals and once calibrated on the backtest (``forecast.intervals``), against the
    weeks that followed; beside statsforecast's own conformal intervals (``ConformalIntervals``,
    per step ahead over 3 rolling windows) for the same chosen model, the peer's way to the same
    end."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F
    from statsforecast import StatsForecast
    from statsforecast import models as sm
    from statsforecast.utils import ConformalIntervals

    from memberlake.forecast.build import demand
    from memberlake.settings import ForecastSettings

    spark, _ = spark_and_lake()
    _, _, weekly = cdnow_weekly(78)
    methods = ("model", "backtest", "statsforecast conformal")
    per = []

    def scored(origin, method, model, got, lo80, hi80, lo95, hi95, forecast, y):
        per.append((origin, method, model, got, float(((y >= lo80) & (y <= hi80)).mean()),
                    float(((y >= lo95) & (y <= hi95)).mean()), float(((hi80 - lo80) / forecast).mean()),
                    float(np.abs(forecast - y).mean())))

    for origin in origins:
        history = spark.createDataFrame([("repeat", "total", None, int(w), float(y)) for w, y in weekly.loc[:origin].items()],
                                        "measure string, series_id string, parent string, ds int, y double")
        y = weekly.loc[origin + 1:origin + horizon].to_numpy(dtype=float)
        for method in methods[:2]:
            cfg = ForecastSettings(horizon=horizon, measures=["units"], intervals=method)
            fc = (demand(history, cfg, origin, lambda *a: None)["demand_forecast"]
                  .where(F.col("level") == "series").orderBy("ds").toPandas())
            model = fc["model"].iloc[0]
            scored(origin, method, model, fc["interval"].iloc[0], *(fc[c].to_numpy() for c in
                   ("lo_80", "hi_80", "lo_95", "hi_95", "forecast")), y)
        if model in ("Naive", "HistoricAverage", "AutoETS", "AutoTheta"):   # the chosen one, non-seasonal here
            kw = {"season_length": 1} if model.startswith("Auto") else {}
            peer = getattr(sm, model)(prediction_intervals=ConformalIntervals(h=horizon, n_windows=3), **kw)
            train = weekly.loc[:origin]
            frame = pd.DataFrame({"unique_id": "total", "ds": train.index.to_numpy(), "y": train.to_numpy(dtype=float)})
            got = StatsForecast([peer], freq=1).forecast(df=frame, h=horizon, level=[80, 95])
            scored(origin, methods[2], model, "conformal", *(np.maximum(got[f"{model}{c}"].to_numpy(), 0.0) for c in
                   ("-lo-80", "-hi-80", "-lo-95", "-hi-95", "")), y)
    lines = [f"### CDNOW weekly repeat purchases: the demand job's 80%/95% intervals, {horizon} weeks ahead from "
             f"weeks {', '.join(map(str, origins))}\n",
             "| origin (week) | intervals | chosen | bounds from | 80% cover | 95% cover | mean 80% width / forecast | MAE |",
             "|---:|---|---|---|---:|---:|---:|---:|"]
    for origin, method, model, got, c80, c95, width, mae in per:
        lines.append(f"| {origin} | {method} | {model} | {got} | {c80:.2f} | {c95:.2f} | {width:.0%} | {mae:.1f} |")
    pooled = {}
    for method in methods:
        mine = [r for r in per if r[1] == method]
        if mine:
            pooled[method] = (sum(r[4] for r in mine) / len(mine), sum(r[5] for r in mine) / len(mine),
                              sum(r[6] for r in mine) / len(mine), len(mine))
    lines.append("\nPooled over the origins (13 weeks each, overlapping): " + "; ".join(
        f"{m} ({n} origins): 80% {a:.2f}, 95% {b:.2f}, mean 80% width {w:.0%} of the forecast"
        for m, (a, b, w, n) in pooled.items()) + ".")
    peer_pooled = pooled.get(methods[2], (float("nan"),) * 3)
    bench_summary.record(
        "cdnow_demand_intervals", f"CDNOW weekly repeat purchases, demand 80%/95% intervals {horizon} weeks ahead "
        f"from {len(origins)} origins", "calibrated on the backtest: %.2f / %.2f of the weeks (80%% width %.0f%%)"
        % (pooled["backtest"][0], pooled["backtest"][1], 100 * pooled["backtest"][2]),
        "statsforecast ConformalIntervals: %.2f / %.2f (%.0f%%); the models' own: %.2f / %.2f (%.0f%%)" % (
            *peer_pooled[:2], 100 * peer_pooled[2], pooled["model"][0], pooled["model"][1], 100 * pooled["model"][2]),
        "—", "near 0.80 / 0.95", lines[0].strip().lstrip("# "))
    return "\n".join(lines) + "\n"


def cdnow(weeks: int = 39) -> str:
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from memberlake.btyd import btyd_summary
    from memberlake.forecast.customer_base import weekly_expectations
    from memberlake.forecast.models import fit_group
    from memberlake.value import clv

    spark, _ = spark_and_lake()
    start, days, weekly = cdnow_weekly(2 * weeks)
    cal_end = start + timedelta(weeks=weeks) - timedelta(days=1)

    # memberlake's demand candidates on the weekly total (39 weeks: too short for a season or a
    # backtest window of 39, so every candidate is shown rather than a choice)
    pdf = pd.DataFrame({"measure": "repeat", "series_id": "total", "status": "backtest", "family": "continuous",
                        "seasonal": False, "ds": weekly.index[:weeks].to_numpy(), "y": weekly.to_numpy()[:weeks]})
    got = fit_group(pdf.astype({"y": float}), cutoffs=[], horizon=weeks, season=52, fallback="HistoricAverage")
    models = {m: g.sort_values("ds")["forecast"].to_numpy() for m, g in got.groupby("model")}

    # BG/NBD on the same 39 weeks (days), summed week by week
    purch = spark.createDataFrame(days.rename(columns={"customer": "person_id"}))
    summary = btyd_summary(purch, cal_end).cache()
    fit = clv.fit_transactions(summary, "bgnbd")
    expected = weekly_expectations(summary.withColumn("expected_value", F.lit(0.0)), "bgnbd", fit.params,
                                   weeks, log_cov=fit.log_covariance, level=0.9).orderBy("week").toPandas()
    actual = weekly.loc[weeks + 1:].to_numpy(dtype=float)
    btyd = expected["expected_purchases"].to_numpy()
    low, high = expected["expected_purchases_lower"].to_numpy(), expected["expected_purchases_upper"].to_numpy()
    inside = int(((actual >= low) & (actual <= high)).sum())
    above = int((actual > high).sum())
    lines = [f"### CDNOW weekly repeat purchases: weeks 1-{weeks} (to {cal_end}) -> weeks {weeks + 1}-{2 * weeks}\n",
             f"23,570 customers. The weekly series has {weeks} weeks: too few for a season of 52 and a backtest window "
             f"of {weeks}, so each non-seasonal candidate is shown. BG/NBD on the same days: "
             + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()) + " (days).\n",
             "| forecast | cumulative repeat purchases, weeks 40-78 | error | MAE per week |", "|---|---:|---:|---:|",
             f"| actual | {actual.sum():,.0f} | | |"]
    for name, values in (*((f"demand model {m}", v) for m, v in models.items()), ("BG/NBD expectation", btyd)):
        lines.append(f"| {name} | {values.sum():,.0f} | {values.sum() / actual.sum() - 1:+.1%} | "
                     f"{np.abs(values - actual).mean():.1f} |")
    lines.append(f"\nBG/NBD 90% weekly bounds (the job's: parameter uncertainty by the delta method plus the "
                 f"persons' own variance): actual inside in {inside} of {weeks} weeks, above in {above}; mean width "
                 f"{(high - low).mean():.0f} purchases ({((high - low) / btyd).mean():.0%} of the expectation); "
                 f"parameter standard errors " + ", ".join(f"{k}={v:.3g}" for k, v in fit.std_errors.items()) + ".")
    bench_summary.record("cdnow_base_bounds", "CDNOW weekly repeat purchases, BG/NBD 90% bounds",
                   f"actual inside {inside} of {weeks} weeks; total {btyd.sum() / actual.sum() - 1:+.1%}",
                   f"AutoTheta total {models['AutoTheta'].sum() / actual.sum() - 1:+.1%} (no bounds compared)", "—",
                   "coverage near 90%", "`python bench/forecast.py cdnow` (printed; log entry appended by hand)")
    lines.append("\nWeekly (actual / BG/NBD [90% bounds] / AutoETS), every 5th week: " + "; ".join(
        f"w{weeks + 1 + i}: {actual[i]:.0f}/{btyd[i]:.0f} [{low[i]:.0f}, {high[i]:.0f}]/{models['AutoETS'][i]:.0f}"
        for i in range(0, weeks, 5)))
    return "\n".join(lines) + "\n"


# -- scale ----------------------------------------------------------------------------------
def synthetic(n: int, weeks: int = 156, seed: int = 3):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    frames = []
    for i in range(n):
        if i % 4 == 3:   # intermittent
            y = rng.poisson(0.3, weeks) * rng.integers(1, 6, weeks)
        else:
            level = rng.uniform(20, 200)
            y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 52 + rng.uniform(0, 6))) + rng.normal(0, level * 0.1, weeks)
            y = np.maximum(y, 0).round()
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": 1000 + t, "y": y.astype(float)}))
    return pd.concat(frames, ignore_index=True)


def scale(n: int, horizon: int = 13, windows: int = 3) -> str:
    import pandas as pd
    from run import PeakMemory  # bench/run.py

    from memberlake.forecast.models import fit_all
    from memberlake.forecast.pattern import profile

    data = synthetic(n)
    last = int(data["ds"].max())
    cutoffs = [last - horizon - (windows - 1 - k) * horizon for k in range(windows)]
    memory = PeakMemory().start()
    spark, _ = spark_and_lake()
    history = spark.createDataFrame(data.assign(measure="units", parent=None).rename(columns={"unique_id": "series_id"})[
        ["measure", "series_id", "parent", "ds", "y"]],
        "measure string, series_id string, parent string, ds int, y double").cache()
    history.count()
    memory.reset()
    started = time.perf_counter()
    prof = profile(history, last, horizon * windows, 52, 8, 26).cache()
    families = {r["family"]: r["n"] for r in prof.groupBy("family").count().withColumnRenamed("count", "n").collect()}
    rows = fit_all(history, prof, cutoffs=cutoffs, horizon=horizon, season=52, fallback="HistoricAverage",
                   series_per_group=50, series=n).count()
    ours, ours_peak = time.perf_counter() - started, memory.peak
    spark.stop()

    # statsforecast alone, in a fresh process (no JVM beside it), same models, windows and series
    import json

    peer = subprocess.run([sys.executable, __file__, "scale-peer", "--series", str(n)], check=True,
                          capture_output=True, text=True)
    got = json.loads(peer.stdout.strip().splitlines()[-1])
    theirs, their_peak, peer_rows = got["seconds"], got["peak"], got["rows"]
    memory.stop()
    del pd
    bench_summary.record(
        "forecast_scale", f"forecast fit + rolling backtest, {n:,} weekly series x 156 weeks",
        f"{ours:.1f} s ({n / ours:.1f} series/s, peak {ours_peak / 1e9:.2f} GB)",
        f"statsforecast alone, n_jobs=2: {theirs:.1f} s (peak {their_peak / 1e9:.2f} GB)", f"{ours / theirs:.2f}x",
        "series/s and peak memory beside the peer", f"Forecast at scale: {n:,} weekly series x 156 weeks")
    return (f"### Forecast at scale: {n:,} weekly series x 156 weeks ({families}), {windows} backtest windows of "
            f"{horizon} + the forecast, models per family as the job fits them\n\n"
            "| run | time | series/s | peak RSS (process tree) | rows out |\n|---|---:|---:|---:|---:|\n"
            f"| memberlake `fit_all` on local[2] (applyInPandas, 50 series per group) | {ours:.1f} s | {n / ours:.1f} | "
            f"{ours_peak / 1e9:.2f} GB | {rows:,} (long: one per model x window x period) |\n"
            f"| statsforecast alone in its own process, n_jobs=2 (cross_validation + forecast) | {theirs:.1f} s | {n / theirs:.1f} | "
            f"{their_peak / 1e9:.2f} GB | {peer_rows:,} (wide: one per window x period) |\n")


def scale_peer(n: int, horizon: int = 13, windows: int = 3) -> None:
    """statsforecast's own run on the series of :func:`scale` (prints seconds, peak RSS, rows as JSON)."""
    import json

    from run import PeakMemory  # bench/run.py
    from statsforecast import StatsForecast

    from memberlake.forecast.models import build, candidates

    data = synthetic(n)
    last = int(data["ds"].max())
    memory = PeakMemory().start()
    memory.reset()
    started = time.perf_counter()
    rows = 0
    for family, ids in prof_families(data, last, horizon * windows).items():
        part = data[data["unique_id"].isin(ids)]
        # MSTL_log is fitted here as MSTL on the raw values (statsforecast has no transform step):
        # the same fit's cost; the log and back-transform are a few vector operations.
        models = [build(m, 52, True, horizon, last - 1000 + 1 - horizon * windows) for m in candidates(family, True)]
        sf = StatsForecast(models, freq=1, n_jobs=2)
        cv = sf.cross_validation(df=part, h=horizon, step_size=horizon, n_windows=windows, level=[80, 95])
        fc = sf.forecast(df=part, h=horizon, level=[80, 95])
        rows += len(cv) + len(fc)
    seconds = time.perf_counter() - started
    memory.stop()
    print(json.dumps({"seconds": seconds, "peak": memory.peak, "rows": rows}))


def prof_families(data, last: int, span: int) -> dict[str, list[str]]:
    """The family per series as :func:`memberlake.forecast.pattern.profile` decides it (ADI cut 1.32)."""
    from memberlake.forecast.pattern import ADI_CUT

    stats = data.groupby("unique_id")["y"].agg(lambda y: len(y) / max((y > 0).sum(), 1))
    return {"continuous": list(stats.index[stats < ADI_CUT]), "intermittent": list(stats.index[stats >= ADI_CUT])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generator")
    g.add_argument("--lakehouse", required=True)
    g.add_argument("--horizon", type=int, default=13)
    g.add_argument("--demand", choices=["steady", "cutoff_study"], default="steady",
                   help="generate.demand the landing zone was generated with (labels the summary row)")
    g.add_argument("--set", dest="overrides", action="append", default=[],
                   help="SECTION.KEY=VALUE for both forecast runs, e.g. forecast.backtest.windows=1")
    c = sub.add_parser("candidates")
    c.add_argument("--lakehouse", required=True)
    c.add_argument("--horizon", type=int, default=13)
    sub.add_parser("cdnow")
    ci = sub.add_parser("cdnow-intervals")
    ci.add_argument("--origins", type=int, nargs="+", default=list(CDNOW_ORIGINS),
                    help="weeks the forecasts start after (history: weeks 1..origin; at most 78 - 13)")
    s = sub.add_parser("scale")
    s.add_argument("--series", type=int, default=10000)
    p = sub.add_parser("scale-peer")
    p.add_argument("--series", type=int, default=10000)
    args = parser.parse_args()
    if args.what == "generator":
        print(generator(args.lakehouse, args.horizon, tuple(args.overrides), args.demand))
    elif args.what == "candidates":
        print(candidates(args.lakehouse, args.horizon))
    elif args.what == "cdnow":
        print(cdnow())
    elif args.what == "cdnow-intervals":
        print(cdnow_intervals(tuple(args.origins)))
    elif args.what == "scale-peer":
        scale_peer(args.series)
    else:
        print(scale(args.series))


if __name__ == "__main__":
    main()
