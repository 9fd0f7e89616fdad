"""The data contract of the raw landing zone and the logical table names.

Landing files are read with every contract column as a string (the *raw* schema): nothing is
lost to a failed cast at read time, and validation decides what is accepted. The *typed*
schema is what silver stores. See docs/data-contract.md for the prose version.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyspark.sql import types as T

Kind = Literal["string", "timestamp", "date", "int", "money", "bool"]
# What happens to a non-empty value that does not parse: the row is quarantined, or the value
# becomes null in silver with a flag (the raw value stays in bronze).
OnInvalid = Literal["quarantine", "null"]

MONEY = T.DecimalType(18, 2)
_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
    "int": T.IntegerType(),
    "money": MONEY,
    "bool": T.BooleanType(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "string"
    required: bool = False
    on_invalid: OnInvalid = "null"


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # Rows with the same key: the one with the latest version column wins (then latest ingest).
    version_column: str | None = None
    # At least one of these must be present (e.g. an event needs some visitor identifier).
    any_of: tuple[str, ...] = ()
    # Columns silver adds, computed by clean (not in landing files), e.g. a phone's line type.
    derived: tuple[Column, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def silver_column_names(self) -> list[str]:
        return [c.name for c in (*self.columns, *self.derived)]

    @property
    def raw_schema(self) -> T.StructType:
        return T.StructType([T.StructField(c.name, T.StringType(), True) for c in self.columns])

    @property
    def typed_schema(self) -> T.StructType:
        """Silver's value columns: the contract's, typed, then the derived ones."""
        return T.StructType(
            [T.StructField(c.name, _SPARK_TYPES[c.kind], True) for c in (*self.columns, *self.derived)]
        )

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


MEMBERS = Entity(
    name="members",
    columns=(
        Column("member_id", required=True),
        Column("source"),
        Column("first_name"),
        Column("last_name"),
        Column("gender"),
        Column("birth_date", "date"),
        Column("email"),
        Column("phone"),
        Column("street"),
        Column("city"),
        Column("postcode"),
        Column("state"),
        Column("country"),
        Column("registered_at", "timestamp"),
        Column("updated_at", "timestamp"),
        Column("marketing_opt_in", "bool"),
    ),
    key=("source", "member_id"),
    version_column="updated_at",
    derived=(Column("phone_type"),),
)

ORDERS = Entity(
    name="orders",
    columns=(
        Column("order_id", required=True),
        Column("member_id"),
        Column("email"),
        Column("phone"),
        Column("order_ts", "timestamp", required=True, on_invalid="quarantine"),
        Column("channel"),
        Column("store_id"),
        Column("status"),
        Column("currency"),
        Column("total_amount", "money", on_invalid="quarantine"),
    ),
    key=("order_id",),
    derived=(Column("phone_type"),),
)

ORDER_ITEMS = Entity(
    name="order_items",
    columns=(
        Column("order_id", required=True),
        Column("line_no", "int", on_invalid="quarantine"),
        Column("product_id", required=True),
        Column("quantity", "int", required=True, on_invalid="quarantine"),
        Column("unit_price", "money", required=True, on_invalid="quarantine"),
        Column("discount_amount", "money", on_invalid="quarantine"),
    ),
    key=("order_id", "line_no"),
)

PRODUCTS = Entity(
    name="products",
    columns=(
        Column("product_id", required=True),
        Column("product_name"),
        Column("category"),
        Column("subcategory"),
        Column("brand"),
        Column("list_price", "money", on_invalid="quarantine"),
    ),
    key=("product_id",),
)

EVENTS = Entity(
    name="events",
    columns=(
        Column("event_id"),
        Column("event_ts", "timestamp", required=True, on_invalid="quarantine"),
        Column("anonymous_id"),
        Column("device_id"),
        Column("member_id"),
        Column("event_type", required=True),
        Column("page_url"),
        Column("referrer"),
        Column("utm_source"),
        Column("utm_medium"),
        Column("utm_campaign"),
        Column("product_id"),
        Column("order_id"),
    ),
    key=("event_id",),
    any_of=("anonymous_id", "device_id", "member_id"),
)

REVIEWS = Entity(
    name="reviews",
    columns=(
        Column("review_id", required=True),
        Column("member_id"),
        Column("email"),
        Column("phone"),
        Column("order_id"),
        Column("product_id"),
        Column("rating", "int"),
        Column("title"),
        Column("body"),
        Column("language"),
        Column("created_at", "timestamp"),
        Column("channel"),
    ),
    key=("review_id",),
    derived=(Column("phone_type"),),
)

CAMPAIGNS = Entity(
    name="campaigns",
    columns=(
        Column("campaign_id", required=True),
        Column("name"),
        Column("channel"),
        Column("objective"),
        Column("start_at", "timestamp"),
        Column("end_at", "timestamp"),
        Column("cost_per_contact", "money", on_invalid="quarantine"),
        Column("currency"),
    ),
    key=("campaign_id",),
)

# One row per contact of a campaign: who got which variant (or the control), and what happened to
# the message. A person is named by any of member id, e-mail and phone, like an order's buyer.
CAMPAIGN_CONTACTS = Entity(
    name="campaign_contacts",
    columns=(
        Column("campaign_id", required=True),
        Column("member_id"),
        Column("email"),
        Column("phone"),
        Column("variant"),
        Column("is_control", "bool"),
        Column("assigned_at", "timestamp"),
        Column("sent_at", "timestamp"),
        Column("delivered_at", "timestamp"),
        Column("opened_at", "timestamp"),
        Column("clicked_at", "timestamp"),
    ),
    # contact_key: a hash of the standardised identifiers, so a key column is never empty.
    key=("campaign_id", "contact_key"),
    any_of=("member_id", "email", "phone"),
    derived=(Column("phone_type"), Column("contact_key")),
)

ENTITIES: dict[str, Entity] = {e.name: e for e in (MEMBERS, ORDERS, ORDER_ITEMS, PRODUCTS, EVENTS, REVIEWS, CAMPAIGNS,
                                                   CAMPAIGN_CONTACTS)}


class Tables:
    """Logical table names: the one place a gold or operational table's name is spelt. Declared
    (keys, snapshot column, schema) in :mod:`memberlake.tables`; bronze and silver names follow
    from the entity. Physical location comes from settings (path or catalog.schema)."""

    ALERTS = "alerts"
    ASPECT_SENTIMENT = "aspect_sentiment"
    ATTRIBUTION = "attribution"
    BASKET_BOUGHT_TOGETHER = "basket_bought_together"
    BASKET_ITEMSETS = "basket_itemsets"
    BASKET_RECOMMENDATIONS = "basket_recommendations"
    BASKET_RULES = "basket_rules"
    CAMPAIGN_ASSIGNMENTS = "campaign_assignments"
    CAMPAIGN_OUTCOMES = "campaign_outcomes"
    CAMPAIGN_POWER = "campaign_power"
    CAMPAIGN_RESULTS = "campaign_results"
    CHURN_CALIBRATION = "churn_calibration"
    CHURN_METRICS = "churn_metrics"
    CHURN_ROC = "churn_roc"
    CHURN_SCORES = "churn_scores"
    CLEAN_BATCHES = "clean_batches"
    CLV = "clv"
    CLV_HOLDOUT = "clv_holdout"
    CLV_PARAMETERS = "clv_parameters"
    CUSTOMER_BASE_FORECAST = "customer_base_forecast"
    DEMAND_FORECAST = "demand_forecast"
    DEMAND_HISTORY = "demand_history"
    DQ_ALERTS = "dq_alerts"
    DQ_METRICS = "dq_metrics"
    FEATURES = "features"
    FORECAST_BACKTEST = "forecast_backtest"
    FORECAST_SERIES = "forecast_series"
    FORGET_REQUESTS = "forget_requests"
    IDENTITY_AUDIT = "identity_audit"
    IDENTITY_EDGES = "identity_edges"
    IDENTITY_GRAPH = "identity_graph"
    IDENTITY_LABELS = "identity_labels"
    INGEST_FILES = "ingest_files"
    JOB_RUNS = "job_runs"
    LATE_EVENTS = "late_events"
    LOYALTY = "loyalty"
    MARKOV_REMOVAL_EFFECTS = "markov_removal_effects"
    MARKOV_TRANSITIONS = "markov_transitions"
    MATCH_PAIRS = "match_pairs"
    MATCH_PARAMETERS = "match_parameters"
    MATCH_RECORDS = "match_records"
    MEMBER_PROFILE = "member_profile"
    MODEL_MONITORING = "model_monitoring"
    PERSON = "person"
    PERSON_BEHAVIOUR = "person_behaviour"
    PERSON_ID_HISTORY = "person_id_history"
    PERSON_ID_MAP = "person_id_map"
    PERSON_REGISTRY = "person_registry"
    PERSON_SENTIMENT = "person_sentiment"
    PRODUCT_SENTIMENT = "product_sentiment"
    QUARANTINE = "quarantine"
    REVIEW_ASPECTS = "review_aspects"
    REVIEW_SENTIMENT = "review_sentiment"
    RFM = "rfm"
    RFM_SEGMENT_MIGRATION = "rfm_segment_migration"
    SEGMENT_PROFILE = "segment_profile"
    SEGMENTS = "segments"
    SENTIMENT_METRICS = "sentiment_metrics"
    SESSION_FUNNEL = "session_funnel"
    SESSIONS = "sessions"
    SESSIONS_BATCHES = "sessions_batches"
    TAG_COVERAGE = "tag_coverage"
    TOP_LANDING_PAGES = "top_landing_pages"
    TOP_PATHS = "top_paths"
    UPLIFT_DECILES = "uplift_deciles"
    UPLIFT_HOLDOUT = "uplift_holdout"
    UPLIFT_METRICS = "uplift_metrics"
    UPLIFT_SCORES = "uplift_scores"

    @staticmethod
    def bronze(entity: str) -> str:
        return f"bronze_{entity}"

    @staticmethod
    def silver(entity: str) -> str:
        return f"silver_{entity}"


# The one snapshot column of every dated table: a re-run of a date replaces its slice.
SNAPSHOT = "as_of_date"
# Snapshot columns of earlier versions, renamed to SNAPSHOT on the next write.
LEGACY_SNAPSHOT_COLUMNS: dict[str, tuple[str, ...]] = {
    **{t: ("run_date",) for t in (Tables.BASKET_ITEMSETS, Tables.BASKET_RULES, Tables.BASKET_BOUGHT_TOGETHER,
                                  Tables.BASKET_RECOMMENDATIONS)},
    Tables.RFM_SEGMENT_MIGRATION: ("to_date",),
    Tables.CLV_HOLDOUT: ("holdout_end",),
}

# Lineage columns added at ingest and carried into silver.
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
BATCH_ID = "_batch_id"
RECORD_HASH = "_record_hash"
FLAGS = "_flags"
