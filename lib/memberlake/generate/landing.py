"""Writing a generated landing zone: CSV entities (quoted commas and newlines), JSON-lines events,
and the ground truth as Parquet under ``<out>/_truth/`` (the underscore keeps it out of ingest)."""
from __future__ import annotations

import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from memberlake.generate import campaigns as C
from memberlake.generate.synth import GenConfig, Generator

log = logging.getLogger(__name__)


def _write_csv(df: DataFrame, path: str) -> None:
    (df.write.mode("overwrite").option("header", True).option("quoteAll", False)
     .option("escape", '"').option("emptyValue", "").csv(path))


def write_landing(spark: SparkSession, cfg: GenConfig, out: str) -> dict[str, int]:
    """Write the landing zone and truth under ``out``; returns row counts per file set."""
    gen = Generator(spark, cfg)
    # Checkpoints, not caches: the generator's columns are large expression trees, and a frame built
    # on a cached one still carries the whole plan, which Spark analyses, optimises and matches
    # against its cache for every query. A checkpoint starts the plans after it from its rows.
    persons = gen.person_frame().localCheckpoint()
    members, member_truth = gen.members(persons)
    planned = C.contacts(gen, persons).localCheckpoint()
    facts, campaign_truth = C.with_effects(gen, gen.order_facts(persons), planned)
    facts = facts.localCheckpoint()
    items = gen.items(facts).localCheckpoint()
    sessions = gen.sessions(facts)
    events = gen.events(sessions).localCheckpoint()
    outputs = {
        "members": members,
        "orders": gen.orders_landing(facts, items),
        "order_items": gen.items_landing(items),
        "products": gen.products(),
    }
    outputs["campaigns"] = C.campaigns_landing(gen)
    outputs["campaign_contacts"] = C.contacts_landing(gen, planned)
    reviews = gen.reviews(facts, items).localCheckpoint()
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
        "campaigns": campaign_truth,
        "sessions": events.select("event_id", "session_key", "anonymous_id"),
        "basket_patterns": spark.createDataFrame(
            [(i, [f"SKU{x:06d}" for x in pat]) for i, pat in enumerate(gen.patterns())], "pattern_id int, product_ids array<string>"),
    }
    for name, df in truth.items():
        df.write.mode("overwrite").parquet(f"{out}/_truth/{name}")
    return counts
