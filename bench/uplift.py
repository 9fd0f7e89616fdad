"""Uplift models: on the generator (against its planted segments) and beside scikit-uplift.

- ``generator``: a lakehouse from ``memberlake pipeline`` on generated data, with its landing
  folder. Runs ``memberlake uplift`` (timed), then reads ``uplift_holdout`` (the held-out
  contacts with the model's and the churn baseline's scores) and joins it to ``_truth/campaigns``
  through ``_truth/members`` and the identity graph. A contact's *true* uplift is its planted
  segment's realised effect (orders added minus removed per treated contact of that segment);
  reported: the true uplift of the model's top decile against the average, and the Qini
  coefficient, AUUC and uplift@30% of the model, the churn-risk order and a random order, from
  ``uplift_metrics`` and again from scikit-uplift on the same rows (the two must agree).
- ``metrics``: N synthetic scored contacts; memberlake's Spark metrics (Qini, AUUC, uplift@k,
  deciles) on ``local[2]`` beside scikit-uplift on the same rows in one process, both timed.
- ``training``: N synthetic contacts with 20 features and a planted effect (strong where the
  first feature is high); the job's own split, every configured learner x classifier fitted and
  chosen on validation Qini, and the test figures of the chosen one, timed with peak memory.
  No single-node peer here: scikit-uplift does not train (it wraps scikit-learn estimators).

    python bench/uplift.py generator --lakehouse L --landing D [--min-rows 200]
    python bench/uplift.py metrics --contacts 1000000
    python bench/uplift.py training --contacts 10000000
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _spark():
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    return get_spark(with_overrides(load_settings("local"), privacy={"require_key": False}))


def _sklift(y, s, w) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklift.metrics import qini_auc_score, uplift_at_k, uplift_auc_score

        return {"qini": qini_auc_score(y, s, w), "auuc": uplift_auc_score(y, s, w),
                "uplift_at_30": uplift_at_k(y, s, w, "overall", 0.3)}


def generator(lakehouse: str, landing: str, min_rows: int) -> str:
    from pyspark.sql import functions as F

    from memberlake import cli
    from memberlake.io.delta import Lakehouse

    spark = _spark()
    started = time.perf_counter()
    assert cli.main(["uplift", "--lakehouse", lakehouse, "--set", f"models.uplift.min_rows={min_rows}"]) == 0
    seconds = time.perf_counter() - started
    lake = Lakehouse(lakehouse, session=spark)
    if not lake.exists("uplift_holdout"):
        return f"uplift: no model trained on {lakehouse} (too few contacts: see the job's log)"
    holdout = lake.read("uplift_holdout")
    holdout = holdout.where(F.col("as_of_date") == holdout.agg(F.max("as_of_date")).first()[0])
    truth = spark.read.parquet(f"{landing}/_truth/campaigns")
    effect = (truth.where("NOT is_control").groupBy("segment")
              .agg(F.avg(F.col("orders_added") - F.col("orders_removed")).alias("true_uplift")))
    members = spark.read.parquet(f"{landing}/_truth/members").select(
        F.concat_ws(":", "source", "member_id").alias("value"), F.col("person_id").alias("true_person"))
    graph = lake.read("identity_graph").where("id_type = 'member'").select("value", "person_id")
    ours = members.join(graph, "value").groupBy("person_id").agg(F.first("true_person").alias("true_person"))
    known = (holdout.join(ours, "person_id")
             .join(truth.select("campaign_id", F.col("person_id").alias("true_person"), "segment"),
                   ["campaign_id", "true_person"])
             .join(effect, "segment"))
    rows = known.toPandas()
    rows["decile"] = (rows["uplift"].rank(ascending=False, method="first") * 10 // (len(rows) + 1)).astype(int) + 1
    top = rows.loc[rows["decile"] == 1, "true_uplift"].mean()
    average = rows["true_uplift"].mean()
    mix = rows.loc[rows["decile"] == 1, "segment"].value_counts(normalize=True).round(3).to_dict()
    metrics = lake.read("uplift_metrics").where("split = 'test'").toPandas()
    metrics = metrics[metrics["as_of_date"] == metrics["as_of_date"].max()]
    table = metrics.pivot_table(index="model", columns="metric", values="value")
    every = holdout.toPandas()
    peer = {"model": _sklift(every["outcome"], every["uplift"], every["treated"]),
            "churn_risk": _sklift(every["outcome"], every["churn_risk"], every["treated"])}
    lines = [f"### Uplift on the generator ({lakehouse}; `memberlake uplift` {seconds:.1f} s)\n",
             f"Held-out contacts: {len(every)}, matched to the planted truth: {len(rows)}. True uplift (planted "
             f"segment's realised orders added minus removed per treated contact): model's top decile "
             f"{top:.4f}, average {average:.4f}, ratio {top / average if average else float('nan'):.2f} "
             f"(target >= 2). Top decile's segments: {mix}.\n",
             "| order by | Qini (memberlake) | Qini (scikit-uplift) | AUUC (memberlake) | AUUC (scikit-uplift) | "
             "uplift@30% (memberlake) | uplift@30% (scikit-uplift) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in table.iterrows():
        key = "model" if not name.startswith(("churn_risk", "random")) else (
            "churn_risk" if name.startswith("churn_risk") else None)
        sk = peer.get(key, {}) if key else {}
        at = next((row[c] for c in row.index if c.startswith("uplift_at_")), float("nan"))
        lines.append(f"| {name} | {row['qini']:.4f} | {sk.get('qini', float('nan')):.4f} | {row['auuc']:.4f} | "
                     f"{sk.get('auuc', float('nan')):.4f} | {at:.4f} | {sk.get('uplift_at_30', float('nan')):.4f} |")
    return "\n".join(lines)


def metrics(n: int, seed: int = 3) -> str:
    import numpy as np

    from memberlake.ml.uplift_metrics import by_decile, qini_coefficient, uplift_at_k, uplift_auc

    spark = _spark()
    r = np.random.default_rng(seed)
    w = r.integers(0, 2, n)
    x = r.random(n)
    y = (r.random(n) < 0.1 + 0.2 * w * x).astype(int)
    s = x + r.normal(0, 0.3, n)
    import pandas as pd

    df = spark.createDataFrame(pd.DataFrame({"y": y, "w": w, "s": s})).repartition(8).cache()
    df.count()
    started = time.perf_counter()
    ours = {"qini": qini_coefficient(df, "s"), "auuc": uplift_auc(df, "s"), "uplift_at_30": uplift_at_k(df, "s", 0.3)}
    by_decile(df, "s")
    spark_s = time.perf_counter() - started
    started = time.perf_counter()
    peer = _sklift(y, s, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklift.metrics import uplift_by_percentile

        uplift_by_percentile(y, s, w, bins=10)
    peer_s = time.perf_counter() - started
    worst = max(abs(ours[k] - peer[k]) for k in ours)
    return (f"### Uplift metrics, {n:,} contacts (local[2] vs scikit-uplift, same process)\n\n"
            f"| | memberlake (Spark) | scikit-uplift |\n|---|---:|---:|\n"
            f"| Qini, AUUC, uplift@30%, deciles | {spark_s:.1f} s | {peer_s:.1f} s |\n"
            f"| Qini coefficient | {ours['qini']:.6f} | {peer['qini']:.6f} |\n"
            f"| AUUC | {ours['auuc']:.6f} | {peer['auuc']:.6f} |\n"
            f"| uplift@30% | {ours['uplift_at_30']:.6f} | {peer['uplift_at_30']:.6f} |\n\n"
            f"Largest difference {worst:.2e}.")


def training(n: int, seed: int = 5) -> str:
    """Split, tune (every learner x classifier of the default settings) and test on N contacts."""
    from pyspark.sql import functions as F
    from run import PeakMemory

    from memberlake.ml import uplift
    from memberlake.settings import load_settings

    spark = _spark()
    cfg = load_settings("local").models.uplift
    names = [f"x{i}" for i in range(20)]
    base = spark.range(n).select(
        F.lit("CMP").alias("campaign_id"), F.format_string("P%010d", "id").alias("person_id"),
        (F.rand(seed) < 0.5).cast("int").alias("w"), *[F.rand(seed + 1 + i).alias(x) for i, x in enumerate(names)])
    # response: 10% base, +0.2 x0 for the treated (uplift grows with x0), x1 moves both arms alike
    p = F.lit(0.05) + 0.1 * F.col("x1") + 0.2 * F.col("w") * F.col("x0")
    rows = base.withColumn("y", (F.rand(seed + 99) < p).cast("int")).repartition(8).localCheckpoint()
    rows.count()
    memory = PeakMemory().start()
    memory.reset()
    started = time.perf_counter()
    parts = {k: v.localCheckpoint() for k, v in uplift.split(rows, cfg).items()}
    sizes = {k: v.count() for k, v in parts.items()}
    split_s = time.perf_counter() - started
    candidates = uplift.tune(parts, names, cfg)
    tune_s = time.perf_counter() - started - split_s
    best = candidates[0]
    test = uplift.evaluation(uplift.score(best.model, parts["test"]), "uplift", cfg.k)
    total_s = time.perf_counter() - started
    peak = memory.peak
    memory.stop()
    lines = [f"### Uplift training, {n:,} synthetic contacts, 20 features (local[2])\n",
             f"Split train/validation/test {sizes['train']:,}/{sizes['validation']:,}/{sizes['test']:,}; "
             f"candidates: {', '.join(f'{c.name} (validation Qini {c.validation_qini:.4f})' for c in candidates)}; "
             f"chosen {best.name}, test Qini {test['qini']:.4f}, AUUC {test['auuc']:.4f}.\n",
             "| step | time |", "|---|---:|",
             f"| split (hash of campaign, person) and checkpoint | {split_s:.1f} s |",
             f"| fit {len(candidates)} candidates + validation Qini each | {tune_s:.1f} s |",
             f"| test figures of the chosen one | {total_s - split_s - tune_s:.1f} s |",
             f"| total | {total_s:.1f} s |", "",
             f"Peak memory (driver + JVM): {peak / 1e9:.2f} GB."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generator")
    gen.add_argument("--lakehouse", required=True)
    gen.add_argument("--landing", required=True)
    gen.add_argument("--min-rows", type=int, default=200)
    sc = sub.add_parser("metrics")
    sc.add_argument("--contacts", type=int, default=1_000_000)
    tr = sub.add_parser("training")
    tr.add_argument("--contacts", type=int, default=10_000_000)
    args = parser.parse_args()
    if args.what == "generator":
        print(generator(args.lakehouse, args.landing, args.min_rows))
    else:
        print((metrics if args.what == "metrics" else training)(args.contacts))


if __name__ == "__main__":
    main()
