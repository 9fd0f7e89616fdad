"""Campaign readout: on the generator (against its planted effect) and at scale (against pandas + scipy).

- ``generator``: a lakehouse from ``memberlake pipeline`` on generated data with its landing
  folder; per campaign and variant the readout's difference in orders per contact and its 95%
  interval beside the realised planted effect (``_truth/campaigns``: orders added minus removed
  per treated contact), and the same for conversion against the planted segments.
- ``scale``: N synthetic contacts (two variants and a control, a binary and a revenue outcome,
  a correlated pre-period) and their purchases; memberlake's readout (outcomes per person in the
  window, arm sums, Welch / CUPED on the driver) on ``local[2]`` beside the single-node peer a user
  would write: pandas for the per-person outcomes and ``scipy.stats.ttest_ind(equal_var=False)``
  for the tests, on the same rows, in one process; both results compared.

    python bench/campaigns.py generator --lakehouse L --landing D
    python bench/campaigns.py scale --contacts 1000000
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _spark():
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    return get_spark(with_overrides(load_settings("local"), privacy={"require_key": False}))


def generator(lakehouse: str, landing: str) -> str:
    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse

    spark = _spark()
    lake = Lakehouse(lakehouse, session=spark)
    results = lake.read("campaign_results").where("metric IN ('orders', 'converted')").toPandas()
    truth = spark.read.parquet(f"{landing}/_truth/campaigns").where("NOT is_control").groupBy("campaign_id", "variant").agg(
        F.count(F.lit(1)).alias("n"), F.avg(F.col("orders_added") - F.col("orders_removed")).alias("planted")).toPandas()
    both = results.merge(truth, on=["campaign_id", "variant"])
    lines = [f"### Campaign readout on the generator ({lakehouse})\n",
             "| campaign | variant | metric | contacts | control | difference | 95% interval | p-value | CUPED difference | "
             "variance removed | planted (orders) | inside |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in both.sort_values(["campaign_id", "variant", "metric"]).itertuples():
        inside = "" if r.metric != "orders" else ("yes" if r.ci_low <= r.planted <= r.ci_high else "NO")
        lines.append(f"| {r.campaign_id} | {r.variant} | {r.metric} | {r.contacts} | {r.control_contacts} | "
                     f"{r.difference:.4f} | [{r.ci_low:.4f}, {r.ci_high:.4f}] | {r.p_value:.3g} | {r.cuped_difference:.4f} | "
                     f"{r.variance_reduction:.1%} | {r.planted:.4f} | {inside} |")
    return "\n".join(lines)


def synthetic(spark, n: int, seed: int = 5):
    """Contacts (campaign C, variants a / b / control), and purchases: a person's pre-period and
    window orders share a rate (so CUPED has something to use); variant a adds 20% to the rate."""
    from pyspark.sql import functions as F

    sent = datetime(2024, 3, 1, 10)
    u = lambda salt: F.rand(seed + salt)  # noqa: E731
    people = spark.range(n).select(
        F.format_string("P%09d", "id").alias("person_id"),
        F.when(u(1) < 1 / 3, "control").when(u(1) < 2 / 3, "a").otherwise("b").alias("variant"),
        (F.exp(F.randn(seed + 2)) * 0.15).alias("rate")).localCheckpoint()
    contacts = people.select(F.lit("C").alias("campaign_id"), F.col("person_id").alias("member_id"),
                             F.lit(None).cast("string").alias("email"), F.lit(None).cast("string").alias("phone"),
                             "variant", (F.col("variant") == "control").alias("is_control"),
                             F.lit(sent).alias("assigned_at"), F.lit(sent).alias("sent_at"),
                             *[F.lit(None).cast("timestamp").alias(c) for c in ("delivered_at", "opened_at", "clicked_at")])
    lam = F.col("rate") * F.when(F.col("variant") == "a", 1.2).otherwise(1.0)
    # up to 3 orders per period: order k happens when a uniform draw falls below the rate / k
    orders = people.select("person_id", "rate", "variant", F.explode(F.array(*[F.lit(k) for k in range(6)])).alias("k")).select(
        "person_id", "k",
        F.when(F.col("k") < 3, F.col("rate")).otherwise(lam).alias("p"), F.rand(seed + 3).alias("u"),
        F.rand(seed + 4).alias("when"), (F.exp(F.randn(seed + 5)) * 40).alias("net")).where(
        F.col("u") < F.col("p") / (1 + F.col("k") % 3))
    start = F.when(F.col("k") < 3, F.lit(sent - timedelta(days=14))).otherwise(F.lit(sent))
    purchases = orders.select("person_id", (start.cast("long") + F.col("when") * 14 * 86400).cast("timestamp").alias("order_ts"),
                              "net")
    graph = people.select(F.lit("member_id").alias("id_type"), F.col("person_id").alias("value"), "person_id")
    return contacts, purchases, graph


def scale(n: int) -> str:
    import pandas as pd
    from run import PeakMemory  # bench/run.py
    from scipy import stats

    from memberlake.campaigns.readout import readout
    from memberlake.settings import CampaignSettings

    spark = _spark()
    contacts, purchases, graph = synthetic(spark, n)
    contacts, purchases, graph = contacts.localCheckpoint(), purchases.localCheckpoint(), graph.localCheckpoint()
    rows = (contacts.count(), purchases.count())
    memory = PeakMemory().start()
    memory.reset()
    started = time.perf_counter()
    out = readout(contacts, None, graph, purchases, None, CampaignSettings(), lambda *a: None)
    ours = {(r.variant, r.metric): r for r in out.whole["campaign_results"].collect()}
    ours_s = time.perf_counter() - started
    ours_peak = memory.peak
    memory.stop()
    # the peer: the same rows in pandas, per-person outcomes by merge + groupby, scipy's Welch test
    c = contacts.select("member_id", "variant", "sent_at").toPandas()
    p = purchases.toPandas()
    started = time.perf_counter()
    m = p.merge(c, left_on="person_id", right_on="member_id")
    inside = (m["order_ts"] >= m["sent_at"]) & (m["order_ts"] < m["sent_at"] + pd.Timedelta(days=14))
    per = m[inside].groupby("person_id").agg(orders=("net", "size"), revenue=("net", "sum"))
    per = c.set_index("member_id").join(per).fillna({"orders": 0, "revenue": 0.0})
    per["converted"] = (per["orders"] > 0).astype(int)
    peer = {}
    for metric in ("converted", "orders", "revenue"):
        ctl = per.loc[per["variant"] == "control", metric].to_numpy(dtype=float)
        for v in ("a", "b"):
            t = per.loc[per["variant"] == v, metric].to_numpy(dtype=float)
            peer[(v, metric)] = (t.mean() - ctl.mean(), stats.ttest_ind(t, ctl, equal_var=False).pvalue)
    peer_s = time.perf_counter() - started
    worst = max(max(abs(ours[k].difference - d), abs(ours[k].p_value - pv)) for k, (d, pv) in peer.items())
    lines = [f"### Campaign readout at scale: {rows[0]:,} contacts, {rows[1]:,} purchases (local[2])\n",
             "| run | time | peak memory |", "|---|---:|---:|",
             f"| memberlake readout (outcomes, arm sums, Welch + CUPED) | {ours_s:.1f} s | {ours_peak / 1e9:.2f} GB |",
             f"| pandas + scipy (outcomes, Welch), data already in memory | {peer_s:.1f} s | (in-process) |", "",
             f"Largest difference between the two on differences and p-values: {worst:.2e}.", "",
             "| variant | metric | difference | 95% interval | p-value | CUPED difference | variance removed |",
             "|---|---|---:|---|---:|---:|---:|"]
    for (v, metric), r in sorted(ours.items()):
        lines.append(f"| {v} | {metric} | {r.difference:.4f} | [{r.ci_low:.4f}, {r.ci_high:.4f}] | {r.p_value:.3g} | "
                     f"{r.cuped_difference:.4f} | {r.variance_reduction:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generator")
    g.add_argument("--lakehouse", required=True)
    g.add_argument("--landing", required=True)
    s = sub.add_parser("scale")
    s.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    print(generator(args.lakehouse, args.landing) if args.what == "generator" else scale(args.contacts))


if __name__ == "__main__":
    main()
