"""Does the loyalty tier predict who stays? Next-period retention per tier, on the generator and CDNOW.

For each data set: the pipeline runs up to ``value`` with ``--as-of D``; the ``loyalty`` slice of D
gives each person's tier; a person is *retained* when they make a completed purchase in the
``--horizon-days`` after D. The index is useful when retention rises with the tier (monotone).

- generator: ``memberlake generate --scale S`` (reviews and sessions included), D = 120 days
  before the last order;
- CDNOW: the full transaction log shipped inside ``lifetimes`` (23,570 customers, 1997-01 to
  1998-06) as landing orders (no members, sessions or reviews: those components are absent), D =
  1997-12-31.

    python bench/loyalty.py [--scale 0.01] [--sets generator cdnow] [--out bench/out/loyalty]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMON = ["--set", "privacy.require_key=false"]


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "memberlake.cli", *args, *COMMON], check=True)


def cdnow_landing(landing: Path) -> None:
    import lifetimes.datasets
    import pandas as pd

    master = Path(lifetimes.datasets.__file__).parent / "CDNOW_master.txt"
    df = pd.read_csv(master, sep=r"\s+", header=0, names=["customer", "day", "cds", "dollars"], dtype=str)
    df["order_ts"] = pd.to_datetime(df["day"], format="%Y%m%d").dt.strftime("%Y-%m-%d 12:00:00")
    orders = pd.DataFrame({"order_id": [f"C{i}" for i in range(len(df))], "member_id": df["customer"],
                           "order_ts": df["order_ts"], "status": "completed", "total_amount": df["dollars"]})
    (landing / "orders").mkdir(parents=True, exist_ok=True)
    orders.to_csv(landing / "orders" / "orders.csv", index=False)


def retention(lakehouse: Path, as_of: date, horizon: int) -> list[tuple[str, int, float, float]]:
    from pyspark.sql import functions as F

    from memberlake.inputs import purchases
    from memberlake.io.delta import Lakehouse
    from memberlake.privacy.pseudonymise import Pseudonymiser
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    settings = with_overrides(load_settings("local"), privacy={"require_key": False})
    spark = get_spark(settings)
    lake = Lakehouse(str(lakehouse))
    orders = Pseudonymiser.from_settings(settings, spark).table(lake.read("silver_orders"))
    bought = purchases(orders, None, lake.read("identity_graph"), None).where(
        (F.col("order_date") > F.lit(as_of)) & (F.col("order_date") <= F.lit(as_of + timedelta(days=horizon)))
    ).select("person_id").distinct().withColumn("retained", F.lit(1.0))
    tiers = lake.read("loyalty").where(F.col("as_of_date") == F.lit(as_of)).join(bought, "person_id", "left")
    rows = tiers.groupBy("loyalty_tier").agg(F.count(F.lit(1)).alias("n"), F.avg("loyalty_index").alias("mean_index"),
                                            F.avg(F.coalesce("retained", F.lit(0.0))).alias("rate")).collect()
    return sorted([(r.loyalty_tier, r.n, float(r.mean_index), float(r.rate)) for r in rows], key=lambda r: -r[2])


def main() -> None:
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--sets", nargs="+", default=["generator", "cdnow"], choices=["generator", "cdnow"])
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--out", default=str(HERE / "out" / "loyalty"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--reuse", action="store_true", help="measure lakehouses a previous run left in --out")
    args = parser.parse_args()
    lines = []
    for name in args.sets:
        root = Path(args.out) / name
        landing, lakehouse = root / "landing", root / "lake"
        t0 = time.perf_counter()
        if name == "generator":
            from memberlake.settings import load_settings

            as_of = load_settings("local").generate.end_date - timedelta(days=120)
            jobs = "ingest,clean,identity,sessions,reviews,value"
        else:
            as_of, jobs = date(1997, 12, 31), "ingest,clean,identity,value"
        if not args.reuse:
            shutil.rmtree(root, ignore_errors=True)
            if name == "generator":
                cli("generate", "--scale", str(args.scale), "--out", str(landing))
            else:
                cdnow_landing(landing)
            cli("pipeline", "--only", jobs, "--as-of", as_of.isoformat(), "--landing", str(landing),
                "--lakehouse", str(lakehouse))
        rows = retention(lakehouse, as_of, args.horizon_days)
        rates = [r[3] for r in rows]
        monotone = all(a >= b for a, b in pairwise(rates))
        lines += [f"\n### {name} (as of {as_of}, retention = a purchase in the next {args.horizon_days} days; "
                  f"pipeline {time.perf_counter() - t0:.0f} s)\n",
                  "| tier | persons | mean index | retained |", "|---|---:|---:|---:|"]
        lines += [f"| {t} | {n:,} | {i:.1f} | {rate:.3f} |" for t, n, i, rate in rows]
        lines.append(f"\nRetention monotone in the tier: **{'yes' if monotone else 'no'}**.")
    text = f"\n## loyalty tiers against next-period retention — `python bench/loyalty.py --scale {args.scale}`\n" + \
        "\n".join(lines) + "\n"
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
