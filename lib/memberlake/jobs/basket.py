"""basket: completed orders -> frequent itemsets, rules, bought-together lists, recommendations.

Each run is a snapshot for its as-of date (default: the last completed order's date): the four
output tables keep one slice per ``as_of_date`` and a re-run of a date replaces only that slice,
so running twice changes nothing. Each run is also an MLflow run (experiment ``<prefix>-basket``).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.basket.baskets import basket_lines, purchase_lines
from memberlake.basket.mining import association_rules, frequent_itemsets, segment_lines
from memberlake.basket.recommend import bought_together, recommendations
from memberlake.contract import SNAPSHOT
from memberlake.inputs import attach_person, completed, latest_order_date, person_graph_or_empty, read_silver
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main, migrate_snapshot_column, snapshot_predicate
from memberlake.ops.runs import recorded_run, unchanged_since_last_run
from memberlake.ops.tracking import tracked_run
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import BasketSettings, Settings

NAME = "basket"
HELP = "Mine frequently-bought-together rules (FP-Growth) and recommend products per person."
log = logging.getLogger(__name__)

OUTPUTS = ("basket_itemsets", "basket_rules", "basket_bought_together", "basket_recommendations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """basket has only the common options (--as-of picks the snapshot date)."""


def segment_columns(cfg: BasketSettings, orders: DataFrame, products: DataFrame | None,
                    profile: DataFrame | None) -> list[str]:
    """The ``segment_by`` columns to mine; profile columns are skipped (warned) before ``value`` ran."""
    if profile is None:
        later = [c for c in cfg.segment_by if c not in orders.columns]
        if later:
            log.warning("basket.segment_by %s: member_profile does not exist yet (run `memberlake value`); "
                        "mining without them", later)
        usable = [c for c in cfg.segment_by if c in orders.columns]
    else:
        usable = list(cfg.segment_by)
    known = set(orders.columns) | set(profile.columns if profile is not None else [])
    missing = [c for c in usable if c not in known]
    if missing:
        raise InputError(f"basket.segment_by: {missing} are neither silver_orders nor member_profile columns; "
                         f"orders have {sorted(orders.columns)}")
    if cfg.level != "product" and (products is None or cfg.level not in products.columns):
        raise InputError(f"basket.level={cfg.level!r}: use 'product' or a silver_products column "
                         f"({sorted(products.columns) if products is not None else 'no silver_products'})")
    return usable


def parameters(cfg: BasketSettings, as_of: date) -> dict[str, object]:
    return {"as_of": as_of.isoformat(), **cfg.model_dump()}


def log_to_mlflow(settings: Settings, as_of: date, params: dict[str, object], counts: dict[str, int],
                  rules: DataFrame, skipped: list[str]) -> None:
    import mlflow

    with tracked_run(settings, NAME, f"basket {as_of}", params):
        mlflow.log_metrics({k: float(v) for k, v in counts.items()})
        top = rules.orderBy(F.col("lift").desc(), F.col("confidence").desc()).limit(100).select(
            "segment_by", "segment", F.to_json("antecedent").alias("antecedent"), "consequent", "support",
            "confidence", "lift", "leverage", "conviction").toPandas()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "top_rules.csv"
            top.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
            if skipped:
                (Path(tmp) / "skipped_segments.txt").write_text("\n".join(skipped) + "\n")
                mlflow.log_artifact(str(Path(tmp) / "skipped_segments.txt"))


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    cfg = settings.basket
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {}, monitoring=settings.monitoring) as run_:
        orders = read_silver(spark, lake, run_, "orders", required=True,
                             pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        items = read_silver(spark, lake, run_, "order_items", required=True)
        products = read_silver(spark, lake, run_, "products", required=cfg.level != "product")
        profile = lake.read(spark, "member_profile") if lake.exists(spark, "member_profile") else None
        segment_by = segment_columns(cfg, orders, products, profile)
        as_of = getattr(args, "as_of", None) or latest_order_date(orders, NAME)
        params = parameters(cfg, as_of)
        run_.parameters.update(params)
        graph = person_graph_or_empty(spark, lake, run_)
        from_profile = [c for c in segment_by if c not in orders.columns]
        if from_profile:       # e.g. the RFM segment or value tier of the buyer
            run_.record_read("member_profile", version=lake.version(spark, "member_profile"))
        if unchanged_since_last_run(spark, lake, run_) and all(lake.exists(spark, t) for t in OUTPUTS):
            run_.stage("inputs and parameters unchanged since the last basket run: nothing to do")
            return
        done = attach_person(completed(orders, as_of), graph, "order_id")
        if from_profile:
            done = done.join(profile.select("person_id", *from_profile), "person_id", "left")
        lines = purchase_lines(done, items, products, cfg.level, ["person_id", *segment_by]).localCheckpoint()
        chosen = basket_lines(lines, cfg.basket_by, as_of, cfg.window_days)
        mined = frequent_itemsets(segment_lines(chosen, segment_by), cfg.min_support, cfg.num_partitions,
                                  cfg.min_segment_baskets)
        itemsets = mined.itemsets.localCheckpoint()
        rules = association_rules(itemsets, cfg.min_confidence, cfg.min_lift).localCheckpoint()
        segments = mined.segments.collect()  # one row per segment
        skipped = [f"{s.segment_by}={s.segment} ({s.baskets} baskets)" for s in segments if not s.mined]
        total = next(s.baskets for s in segments if s.segment_by == "all")
        run_.stage("%d baskets (%s), %d segments mined, %d skipped as smaller than %d baskets",
                   total, cfg.basket_by, sum(s.mined for s in segments), len(skipped), cfg.min_segment_baskets)
        recent_start = F.lit(as_of - timedelta(days=cfg.recent_days - 1)).cast("timestamp")
        people = lines.where(F.col("person_id").isNotNull())
        recs = recommendations(rules, people.where(F.col("order_ts") >= recent_start), people, cfg.top_n)
        stamp = [F.lit(as_of).alias(SNAPSHOT), F.lit(json.dumps(params, sort_keys=True)).alias("parameters")]
        outputs = {
            "basket_itemsets": itemsets.select("*", *stamp),
            "basket_rules": rules.select("*", *stamp),
            "basket_bought_together": bought_together(rules, cfg.top_n).select("*", stamp[0]),
            "basket_recommendations": recs.select("*", stamp[0]),
        }
        counts = {"baskets": total, "segments_mined": sum(s.mined for s in segments), "tokens": mined.tokens}
        for table, df in outputs.items():
            migrate_snapshot_column(spark, lake, table)
            lake.replace_where(df, table, snapshot_predicate(as_of))
            written = lake.read(spark, table).where(F.col(SNAPSHOT) == F.lit(as_of)).count()
            run_.record_write(table, written, lake.version(spark, table))
            counts[table.removeprefix("basket_")] = written
        run_.stage("itemsets %d, rules %d, recommendations %d", counts["itemsets"], counts["rules"],
                   counts["recommendations"])
        log_to_mlflow(settings, as_of, params, counts, lake.read(spark, "basket_rules").where(
            F.col(SNAPSHOT) == F.lit(as_of)), skipped)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
