"""One basket snapshot: frequent itemsets, rules, bought-together lists and recommendations.

:func:`snapshot` is what the ``basket`` job runs between reading its inputs and publishing.
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.basket.baskets import basket_lines, purchase_lines
from memberlake.basket.mining import association_rules, frequent_itemsets, segment_lines
from memberlake.basket.recommend import bought_together, recommendations
from memberlake.contract import SNAPSHOT, Tables
from memberlake.errors import InputError
from memberlake.inputs import attach_person, completed
from memberlake.ops.context import Outputs
from memberlake.ops.tracking import tracked_run
from memberlake.settings import BasketSettings, Settings

log = logging.getLogger(__name__)

OUTPUTS = (Tables.BASKET_ITEMSETS, Tables.BASKET_RULES, Tables.BASKET_BOUGHT_TOGETHER, Tables.BASKET_RECOMMENDATIONS)


@dataclass
class Basket(Outputs):
    """The snapshot's tables, plus the segments too small to mine."""

    skipped: list[str] = field(default_factory=list)


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


def log_run(settings: Settings, job: str, as_of: date, params: dict[str, object], counts: dict[str, int],
            rules: DataFrame, skipped: list[str]) -> None:
    """The run's MLflow metrics, its top 100 rules and the segments too small to mine."""
    import mlflow

    with tracked_run(settings, job, f"basket {as_of}", params):
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


def snapshot(orders: DataFrame, items: DataFrame, products: DataFrame | None, profile: DataFrame | None,
             graph: DataFrame, segment_by: list[str], cfg: BasketSettings, as_of: date, params: dict[str, object],
             stage: Callable[..., None]) -> Basket:
    """The four basket tables' slices for ``as_of``; ``profile`` gives the ``segment_by`` columns
    that orders lack (e.g. the buyer's RFM segment)."""
    done = attach_person(completed(orders, as_of), graph, "order_id")
    from_profile = [c for c in segment_by if c not in orders.columns]
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
    stage("%d baskets (%s), %d segments mined, %d skipped as smaller than %d baskets",
          total, cfg.basket_by, sum(s.mined for s in segments), len(skipped), cfg.min_segment_baskets)
    recent_start = F.lit(as_of - timedelta(days=cfg.recent_days - 1)).cast("timestamp")
    people = lines.where(F.col("person_id").isNotNull())
    recs = recommendations(rules, people.where(F.col("order_ts") >= recent_start), people, cfg.top_n)
    stamp = [F.lit(as_of).alias(SNAPSHOT), F.lit(json.dumps(params, sort_keys=True)).alias("parameters")]
    return Basket(as_of=as_of, skipped=skipped, slices={
        Tables.BASKET_ITEMSETS: itemsets.select("*", *stamp),
        Tables.BASKET_RULES: rules.select("*", *stamp),
        Tables.BASKET_BOUGHT_TOGETHER: bought_together(rules, cfg.top_n).select("*", stamp[0]),
        Tables.BASKET_RECOMMENDATIONS: recs.select("*", stamp[0]),
    }, counts={"baskets": total, "segments_mined": sum(s.mined for s in segments), "tokens": mined.tokens})
