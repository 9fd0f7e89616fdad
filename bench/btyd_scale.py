"""Benchmark: the CLV fits, standard errors and per-person intervals at a million persons, beside
``lifetimes`` on the same summary in the same run.

The summary (frequency, recency, T in days) of ``--persons`` persons is simulated from a
Pareto/NBD process with known parameters (vectorised numpy; first purchases spread over two
years, observed to one as-of date, times rounded to days as the pipeline's summary is), so the
fits can also be checked against the truth. Timed on ``local[2]``:

- memberlake: Pareto/NBD and BG/NBD fits (L-BFGS-B, one Spark pass per step, plus the one pass for
  the Hessian), and ``clv.score`` with ``--samples`` parameter draws per person (written to a
  no-op sink so every row is computed);
- ``lifetimes``: ParetoNBDFitter and BetaGeoFitter on the same summary (one row per person, as a
  user would call them), with their standard errors.

    python bench/btyd_scale.py [--persons 1000000] [--samples 100]
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PeakMemory  # noqa: E402

TRUE = {"r": 0.55, "alpha": 10.0, "s": 0.6, "beta": 80.0}   # days


def simulate(n: int, seed: int, span: int = 730, cap: int = 300) -> tuple[np.ndarray, ...]:
    """(x, t_x, T) in whole days of ``n`` persons from Pareto/NBD with ``TRUE`` parameters."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    mu = rng.gamma(TRUE["s"], 1 / TRUE["beta"], n)
    T = rng.integers(1, span, n).astype(float)
    end = np.minimum(rng.exponential(1 / mu), T)
    x = np.zeros(n)
    tx = np.zeros(n)
    block = 200_000
    for lo in range(0, n, block):      # in blocks: (persons x cap) arrival times
        hi = min(lo + block, n)
        times = np.cumsum(rng.exponential(1.0, (hi - lo, cap)) / lam[lo:hi, None], axis=1)
        seen = (times <= end[lo:hi, None]).sum(axis=1)
        x[lo:hi] = seen
        tx[lo:hi] = np.where(seen > 0, np.take_along_axis(times, np.maximum(seen - 1, 0)[:, None], axis=1)[:, 0], 0)
    return x, np.floor(tx), T


def main() -> None:
    import lifetimes
    import pandas as pd

    from memberlake.settings import load_settings
    from memberlake.spark import get_spark
    from memberlake.value import clv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    memory = PeakMemory()
    memory.start()
    x, tx, T = simulate(args.persons, args.seed)
    # spend per repeat purchase from Gamma-Gamma (p 6, q 4, γ 15: the CDNOW fit's size)
    rng = np.random.default_rng(args.seed + 1)
    nu = rng.gamma(4.0, 1 / 15.0, len(x))
    mean_spend = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1), 1.0) / (nu * np.maximum(x, 1)), 0.0)
    summary = pd.DataFrame({"person_id": [f"P{i}" for i in range(len(x))], "frequency": x, "recency": tx, "T": T,
                            "monetary_value": mean_spend})
    # lifetimes on the distinct rows with their counts as weights (on one row per person its
    # Pareto/NBD fit takes minutes per 20,000 persons)
    compact = summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    spark = get_spark(load_settings("local"))
    df = spark.createDataFrame(summary).repartition(spark.sparkContext.defaultParallelism).cache()
    df.count()
    distinct = df.select("frequency", "recency", "T").distinct().count()
    rows = []

    def timed(label, fn):
        memory.reset()
        t0 = time.perf_counter()
        out = fn()
        rows.append((label, time.perf_counter() - t0, memory.peak / 1e9))
        print(f"{label}: {rows[-1][1]:.1f} s", flush=True)
        return out

    fits = {m: timed(f"memberlake {m} fit + standard errors", lambda m=m: clv.fit_transactions(df, m))
            for m in ("pareto_nbd", "bgnbd")}
    gg = timed("memberlake Gamma-Gamma fit + standard errors", lambda: clv.fit_gamma_gamma(df))
    for m, fit in fits.items():
        intervals = clv.Intervals(gg, 0.9, args.samples, 1)
        timed(f"memberlake {m} scoring, {args.samples} draws per person",
              lambda fit=fit, intervals=intervals: clv.score(df, fit, gg.params, 365, 0.1, intervals)
              .write.format("noop").mode("overwrite").save())
    timed("memberlake scoring without intervals (pareto_nbd)",
          lambda: clv.score(df, fits["pareto_nbd"], gg.params, 365, 0.1).write.format("noop").mode("overwrite").save())
    peers = {"pareto_nbd": timed("lifetimes ParetoNBDFitter (distinct rows, weights)", lambda: lifetimes.ParetoNBDFitter().fit(
                 compact["frequency"], compact["recency"], compact["T"], weights=compact["n"])),
             "bgnbd": timed("lifetimes BetaGeoFitter (distinct rows, weights)", lambda: lifetimes.BetaGeoFitter().fit(
                 compact["frequency"], compact["recency"], compact["T"], weights=compact["n"]))}
    memory.stop()
    lines = [f"\n## CLV fits, standard errors and intervals at {args.persons:,} persons — "
             f"`python bench/btyd_scale.py --persons {args.persons} --samples {args.samples}` — "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n",
             f"Machine: {platform.machine()}, CPython {platform.python_version()}; Spark `local[2]`. Summary simulated "
             f"from Pareto/NBD (r {TRUE['r']}, α {TRUE['alpha']}, s {TRUE['s']}, β {TRUE['beta']}, days); "
             f"{distinct:,} distinct (x, t_x, T).\n",
             "| step | seconds | peak RSS GB |", "|---|---:|---:|"]
    lines += [f"| {label} | {sec:.1f} | {gb:.2f} |" for label, sec, gb in rows]
    lines += ["", "| model | parameter | memberlake | se | lifetimes | se | truth |", "|---|---|---:|---:|---:|---:|---:|"]
    for m, fit in fits.items():
        ref = peers[m]
        ref_se = getattr(ref, "standard_errors_", None)    # ParetoNBDFitter has none
        for k, v in fit.params.items():
            lines.append(f"| {m} | {k} | {v:.4f} | {fit.std_errors[k]:.4f} | {ref.params_[k]:.4f} | "
                         f"{'' if ref_se is None else f'{ref_se[k]:.4f}'} | {TRUE[k] if m == 'pareto_nbd' else ''} |")
    lines.append("\nGamma-Gamma: " + ", ".join(f"{k} {v:.4f} ± {gg.std_errors[k]:.4f}" for k, v in gg.params.items())
                 + " (simulated with p 6, q 4, γ 15)")
    text = "\n".join(lines) + "\n"
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
