"""Benchmark: the three transaction models on CDNOW, memberlake (Spark) beside ``lifetimes``.

Input: the CDNOW 1/10 sample shipped inside ``lifetimes`` (2,357 customers, calibration to
1997-09-30, time in weeks: ``load_cdnow_summary``). For BG/NBD, MBG/NBD and Pareto/NBD it fits
memberlake's Spark likelihood and the ``lifetimes`` fitter on the same summary in one process and
prints the parameters, log-likelihoods, fit times and the relative differences, with the papers'
published parameters where there are some. Then it runs memberlake's holdout choice on the full
CDNOW transaction log (``CDNOW_master.txt``, 23,570 customers: calibration up to 1997-09-30,
holdout to 1998-06-30, the split of the papers) and prints each model's holdout error.

    python bench/cdnow_btyd.py
"""
from __future__ import annotations

import logging
import sys
import time
from datetime import date
from pathlib import Path

PUBLISHED = {   # weeks; Fader, Hardie & Lee (2005a, 2005b)
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "pareto_nbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}


def main() -> int:
    import lifetimes
    from lifetimes.datasets import load_cdnow_summary

    from memberlake import btyd as transactions
    from memberlake.settings import load_settings
    from memberlake.spark import get_spark
    from memberlake.value import clv

    logging.basicConfig(level=logging.WARNING)
    spark = get_spark(load_settings("local"))
    summary = load_cdnow_summary(index_col=[0])
    rows = [(str(i), float(x), float(tx), float(t)) for i, x, tx, t in
            zip(summary.index, summary["frequency"], summary["recency"], summary["T"], strict=True)]
    df = spark.createDataFrame(rows, "person_id string, frequency double, recency double, T double").cache()
    df.count()
    fitters = {"bgnbd": lifetimes.BetaGeoFitter, "mbgnbd": lifetimes.ModifiedBetaGeoFitter,
               "pareto_nbd": lifetimes.ParetoNBDFitter}
    print(f"CDNOW sample: {len(rows)} customers (weeks)")
    print("| model | parameter | memberlake | lifetimes | published | rel. diff to lifetimes |")
    print("|---|---|---:|---:|---:|---:|")
    times = []
    for model, fitter in fitters.items():
        started = time.perf_counter()
        fit = clv.fit_transactions(df, model)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        ref = fitter().fit(summary["frequency"], summary["recency"], summary["T"])
        theirs = time.perf_counter() - started
        for name in transactions.MODELS[model].parameters:
            other = float(ref.params_[name])
            published = PUBLISHED.get(model, {}).get(name)
            print(f"| {model} | {name} | {fit.params[name]:.4f} | {other:.4f} | "
                  f"{'' if published is None else published} | {abs(fit.params[name] / other - 1):.2%} |")
        times.append((model, fit.log_likelihood, fit.iterations, ours, theirs))
    print("\n| model | log-likelihood (memberlake) | iterations | memberlake fit s | lifetimes fit s |")
    print("|---|---:|---:|---:|---:|")
    for model, ll, iterations, ours, theirs in times:
        print(f"| {model} | {ll:.2f} | {iterations} | {ours:.1f} | {theirs:.1f} |")

    master = Path(lifetimes.datasets.__file__).parent / "CDNOW_master.txt"
    purchases = (spark.read.text(str(master))
                 .selectExpr("split(trim(regexp_replace(value, '\\\\s+', ' ')), ' ') AS f")
                 .where("f[1] RLIKE '^[0-9]{8}$'")       # not the header line
                 .selectExpr("f[0] AS person_id", "to_date(f[1], 'yyyyMMdd') AS order_date",
                             "CAST(f[3] AS double) AS net"))
    started = time.perf_counter()
    holdout = clv.holdout_report(purchases, date(1998, 6, 30), 273, 200, ["bgnbd", "mbgnbd", "pareto_nbd"])
    took = time.perf_counter() - started
    print(f"\nCDNOW master (23,570 customers), days; calibration to 1997-09-30, holdout 273 days "
          f"({took:.0f} s for the three fits and the report)")
    print("| model | holdout MAE per customer | predicted | actual | chosen |")
    print("|---|---:|---:|---:|---|")
    for model, e in holdout.errors.items():
        print(f"| {model} | {e['mae']:.4f} | {e['predicted']:.0f} | {e['actual']:.0f} | "
              f"{'yes' if model == holdout.chosen else ''} |")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
