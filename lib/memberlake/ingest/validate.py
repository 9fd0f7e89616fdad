"""Landing rows -> bronze (accepted, as received) or quarantine (rejected, with every reason).

A row is rejected at ingest when it is malformed (field count off), a required column is
empty, none of an entity's ``any_of`` identifiers is present, or a column whose contract says
``on_invalid="quarantine"`` holds a value that does not parse. Other unparseable values are
accepted here and become null with a flag in silver; the raw text stays in bronze.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.contract import BATCH_ID, INGESTED_AT, RECORD_HASH, SOURCE_FILE, Entity
from memberlake.exprs import labels
from memberlake.io.landing import CORRUPT
from memberlake.parsing import blank_to_null, parse
from memberlake.settings import LandingSettings

REASONS = "_reasons"
LINEAGE = [SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH]


def rejection_reasons(entity: Entity, landing: LandingSettings) -> Column:
    """An array of every reason a raw row of ``entity`` is rejected (empty when accepted)."""
    checks: list[Column] = [F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_row"))]
    for column in entity.columns:
        value = blank_to_null(F.col(column.name), landing.null_values)
        if column.required:
            checks.append(F.when(value.isNull(), F.lit(f"missing:{column.name}")))
        if column.kind != "string" and column.on_invalid == "quarantine":
            typed = parse(value, column.kind, landing)
            checks.append(F.when(value.isNotNull() & typed.isNull(), F.lit(f"unparseable:{column.name}")))
    if entity.any_of:
        present = [blank_to_null(F.col(c), landing.null_values).isNotNull() for c in entity.any_of]
        anyone = present[0]
        for p in present[1:]:
            anyone = anyone | p
        checks.append(F.when(~anyone, F.lit("missing_any_of:" + "|".join(entity.any_of))))
    return labels(checks)


def with_lineage(raw: DataFrame, entity: Entity, batch_id: str, ingested_at) -> DataFrame:
    """Add batch id, ingest time and a hash of the row's contract values."""
    record = F.to_json(F.struct(*[F.col(c) for c in entity.column_names], F.col(CORRUPT)))
    return raw.select(
        *entity.column_names,
        CORRUPT,
        SOURCE_FILE,
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT),
        F.lit(batch_id).alias(BATCH_ID),
        F.sha2(record, 256).alias(RECORD_HASH),
    )


def validate(raw: DataFrame, entity: Entity, landing: LandingSettings) -> DataFrame:
    """``raw`` (conformed landing rows with lineage) plus a ``_reasons`` array."""
    return raw.select("*", rejection_reasons(entity, landing).alias(REASONS))


def accepted(validated: DataFrame, entity: Entity) -> DataFrame:
    """Bronze rows: the contract columns as received plus lineage."""
    return validated.where(F.size(REASONS) == 0).select(*entity.column_names, *LINEAGE)


def rejected(validated: DataFrame, entity: Entity, stage: str = "ingest") -> DataFrame:
    """Quarantine rows: the raw record as JSON and all reasons."""
    raw_record = F.to_json(F.struct(*[F.col(c) for c in entity.column_names], F.col(CORRUPT)))
    return validated.where(F.size(REASONS) > 0).select(
        F.lit(entity.name).alias("entity"),
        F.lit(stage).alias("stage"),
        raw_record.alias("raw_record"),
        F.col(REASONS).alias("reasons"),
        *LINEAGE,
    )
