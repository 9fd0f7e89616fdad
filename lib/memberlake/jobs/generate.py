"""generate: write synthetic landing files and their ground truth (``memberlake generate``).

Members, orders, order items and products are written as CSV (with quoted commas and
newlines), events as JSON lines; the truth goes to ``<out>/_truth/`` as Parquet (the leading
underscore keeps it out of ingest).
"""
from __future__ import annotations

import argparse
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from memberlake.generate.synth import GenConfig, Generator
from memberlake.jobs.common import InputError, job_main
from memberlake.settings import Settings

NAME = "generate"
HELP = "Generate a synthetic landing zone (members, orders, items, products, events, reviews) with ground truth."
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, help="1.0 = 1M member records, 5M orders, 10M events (default: generate.scale)")
    parser.add_argument("--seed", type=int, help="random seed (default: generate.seed)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: landing.path)")


def config(settings: Settings, args: argparse.Namespace) -> GenConfig:
    g = settings.generate
    scale = args.scale if args.scale is not None else g.scale
    if scale <= 0:
        raise InputError("--scale must be positive, e.g. --scale 0.01")
    return GenConfig(
        scale=scale,
        seed=args.seed if args.seed is not None else g.seed,
        start=g.start_date,
        cutoff=g.cutoff_date,
        end=g.end_date,
        events_per_record=g.events_per_record,
    )


def _write_csv(df: DataFrame, path: str) -> None:
    (df.write.mode("overwrite").option("header", True).option("quoteAll", False)
     .option("escape", '"').option("emptyValue", "").csv(path))


def generate(spark: SparkSession, cfg: GenConfig, out: str) -> dict[str, int]:
    """Write the landing zone and truth under ``out``; returns row counts per file set."""
    gen = Generator(spark, cfg)
    persons = gen.person_frame().cache()
    members, member_truth = gen.members(persons)
    facts = gen.order_facts(persons).cache()
    items = gen.items(facts).cache()
    sessions = gen.sessions(facts)
    events = gen.events(sessions).persist(StorageLevel.MEMORY_AND_DISK)
    outputs = {
        "members": members,
        "orders": gen.orders_landing(facts, items),
        "order_items": gen.items_landing(items),
        "products": gen.products(),
    }
    reviews = gen.reviews(facts, items).persist(StorageLevel.MEMORY_AND_DISK)
    outputs["reviews"] = reviews.drop("person_id", "planted", "polarity")
    counts: dict[str, int] = {}
    for name, df in outputs.items():
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        counts[name] = df.count()
        _write_csv(df, f"{out}/{name}")
        df.unpersist()
        log.info("generate: %s: %d rows", name, counts[name])
    counts["events"] = events.count()
    events.drop("session_key", "j", "pidx").write.mode("overwrite").json(f"{out}/events")
    log.info("generate: events: %d rows", counts["events"])
    truth = {
        "members": member_truth,
        "identifiers": gen.identifier_truth(persons),
        "persons": persons.select("person_id", "pidx", "head", "is_churner"),
        "churn": gen.churn_truth(facts),
        "reviews": reviews.select("review_id", "person_id", "planted", "polarity"),
        "sessions": events.select("event_id", "session_key", "anonymous_id"),
        "basket_patterns": spark.createDataFrame(
            [(i, [f"SKU{x:06d}" for x in pat]) for i, pat in enumerate(gen.patterns())], "pattern_id int, product_ids array<string>"),
    }
    for name, df in truth.items():
        df.write.mode("overwrite").parquet(f"{out}/_truth/{name}")
    for df in (persons, facts, items, events, reviews):
        df.unpersist()
    return counts


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    out = args.out or settings.landing.path
    if not out:
        raise InputError("--out DIR is required (or set landing.path)")
    cfg = config(settings, args)
    log.info("generate: scale %s seed %s -> %s (%d persons, ~%d records, ~%d orders, ~%d events)",
             cfg.scale, cfg.seed, out, cfg.n_persons, cfg.n_records, cfg.n_orders, cfg.n_events)
    return generate(spark, cfg, out)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
