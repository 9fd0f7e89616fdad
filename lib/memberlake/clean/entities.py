"""Bronze -> silver rules per entity: typing, standardisation, flags, clean-stage rejections.

Identifiers are only trimmed (by the null normalisation); names and addresses also get their
inner whitespace collapsed. Every entity goes through one ``select``: each contract column gets its standardised value, a
``_flags`` array says what was changed or is suspicious (the row is kept), and a ``_reasons``
array says why the row must be quarantined instead (business rules such as a negative
quantity). The per-column rules and the missing-value policy are documented in
docs/data-contract.md; this module is their single implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake import standardise as S
from memberlake.contract import BATCH_ID, FLAGS, INGESTED_AT, MONEY, RECORD_HASH, SOURCE_FILE, Entity
from memberlake.exprs import labels
from memberlake.parsing import blank_to_null, parse
from memberlake.phones import phone_info
from memberlake.settings import CleanSettings, LandingSettings

REASONS = "_reasons"
VERSION = "_version"
RAW = "_raw"
RAW_PREFIX = "__raw_"
LINEAGE = [SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH]

TYPED_PREFIX = "__typed_"
COUNTRY = "__country"
PHONE = "__phone"

Value = Callable[[str], Column]


@dataclass
class Rules:
    """What an entity's standardiser decides, as column expressions."""

    values: dict[str, Column] = field(default_factory=dict)
    flags: list[Column] = field(default_factory=list)
    reasons: list[Column] = field(default_factory=list)
    version: Column | None = None

    def flag(self, condition: Column, name: str) -> None:
        self.flags.append(F.when(condition, F.lit(name)))

    def reject(self, condition: Column, name: str) -> None:
        self.reasons.append(F.when(condition, F.lit(name)))


def _contact(rules: Rules, raw: Value, clean: CleanSettings) -> None:
    """Email and phone: shared by members and orders. The phone was parsed with the row's
    country in an earlier projection (``PHONE``, see :mod:`memberlake.phones`)."""
    rules.values["email"] = S.email(raw("email"))
    rules.flag(raw("email").isNotNull() & rules.values["email"].isNull(), "email_invalid")
    rules.values["phone"] = F.col(f"{PHONE}.e164")
    rules.values["phone_type"] = F.col(f"{PHONE}.phone_type")
    rules.flag(raw("phone").isNotNull() & rules.values["phone"].isNull(), "phone_invalid")
    rules.flag(rules.values["phone"].isNotNull() & ~F.col(f"{PHONE}.valid"), "phone_unassigned")


def _members(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    rules = Rules()
    v = rules.values
    v["member_id"] = raw("member_id")
    v["source"] = F.coalesce(F.lower(S.squish(raw("source"))), F.lit(landing.default_source.lower()))
    v["first_name"] = S.name_case(raw("first_name"))
    v["last_name"] = S.name_case(raw("last_name"))
    genders = sorted(set(clean.gender_map.values()))
    gender = S.mapped(raw("gender"), clean.gender_map)
    v["gender"] = F.when(gender.isin(genders), gender).otherwise(F.lit("unknown"))
    rules.flag(raw("gender").isNotNull() & ~gender.isin(genders), "gender_unmapped")
    reference = F.to_date(F.col(INGESTED_AT))
    birth = typed("birth_date")
    impossible = (birth > reference) | (birth < F.add_months(reference, -12 * clean.max_age_years))
    v["birth_date"] = F.when(~impossible, birth)
    rules.flag(impossible, "birth_date_out_of_range")
    _contact(rules, raw, clean)
    v["street"] = S.squish(raw("street"))
    v["city"] = S.name_case(raw("city"))
    v["state"] = F.upper(S.squish(raw("state")))
    v["country"] = F.col(COUNTRY)
    rules.flag(raw("country").isNull(), "country_defaulted")
    v["postcode"] = S.postcode(raw("postcode"), F.col(COUNTRY))
    for name in ("registered_at", "updated_at", "marketing_opt_in"):
        v[name] = typed(name)
    rules.version = F.coalesce(typed("updated_at"), typed("registered_at"), F.col(INGESTED_AT))
    return rules


def _orders(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    rules = Rules()
    v = rules.values
    for name in ("order_id", "member_id", "store_id"):
        v[name] = raw(name)
    _contact(rules, raw, clean)
    v["order_ts"] = typed("order_ts")
    v["channel"] = S.mapped(raw("channel"), clean.channel_map)
    statuses = ["completed", "cancelled", "returned"]
    status = S.mapped(raw("status"), clean.status_map)
    v["status"] = F.coalesce(status, F.lit("completed"))
    rules.flag(status.isNull(), "status_defaulted")
    rules.flag(status.isNotNull() & ~status.isin(statuses), "status_unknown")
    v["currency"] = F.coalesce(F.upper(S.squish(raw("currency"))), F.lit(clean.default_currency))
    amount = typed("total_amount")
    v["total_amount"] = amount
    rules.reject(amount < 0, "negative_total_amount")
    rules.flag(amount > clean.max_order_amount, "amount_outlier")
    return rules


def _order_items(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    rules = Rules()
    v = rules.values
    v["order_id"] = raw("order_id")
    v["product_id"] = raw("product_id")
    v["line_no"] = typed("line_no")
    quantity, price = typed("quantity"), typed("unit_price")
    discount = F.coalesce(typed("discount_amount"), F.lit(0).cast(MONEY))
    v["quantity"], v["unit_price"], v["discount_amount"] = quantity, price, discount
    rules.reject(quantity <= 0, "non_positive_quantity")
    rules.reject(price < 0, "negative_unit_price")
    rules.reject(discount < 0, "negative_discount")
    rules.flag(quantity > clean.max_quantity, "quantity_outlier")
    rules.flag(discount > quantity * price, "discount_exceeds_gross")
    rules.flag(raw("line_no").isNull(), "line_no_derived")
    return rules


def _products(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    rules = Rules()
    v = rules.values
    v["product_id"] = raw("product_id")
    for name in ("product_name", "category", "subcategory", "brand"):
        v[name] = S.squish(raw(name))
    v["list_price"] = typed("list_price")
    rules.reject(v["list_price"] < 0, "negative_list_price")
    return rules


def _events(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    rules = Rules()
    v = rules.values
    identity = F.concat_ws("|", *[F.coalesce(raw(c), F.lit("")) for c in
                                  ("event_ts", "anonymous_id", "device_id", "member_id", "event_type", "page_url", "product_id", "order_id")])
    v["event_id"] = F.coalesce(raw("event_id"), F.concat(F.lit("h_"), F.sha2(identity, 256).substr(1, 32)))
    rules.flag(raw("event_id").isNull(), "event_id_derived")
    v["event_ts"] = typed("event_ts")
    for name in ("anonymous_id", "device_id", "member_id", "product_id", "order_id", "page_url", "referrer"):
        v[name] = raw(name)
    v["event_type"] = F.regexp_replace(F.lower(S.squish(raw("event_type"))), r"[\s-]+", "_")
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        v[name] = F.lower(S.squish(raw(name)))
    return rules


REVIEW_CHANNELS = ("app", "web", "store", "survey", "social", "other")


def _reviews(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    """A review needs words: empty title and body together are quarantined. A rating outside 1-5
    becomes null (flagged; bronze keeps it): it must not turn into a weak label."""
    rules = Rules()
    v = rules.values
    for name in ("review_id", "member_id", "order_id", "product_id"):
        v[name] = raw(name)
    _contact(rules, raw, clean)
    rating = typed("rating")
    outside = (rating < 1) | (rating > 5)
    v["rating"] = F.when(~outside, rating)
    rules.flag(outside, "rating_out_of_range")
    v["title"], v["body"] = S.squish(raw("title")), F.trim(raw("body"))
    rules.reject(v["title"].isNull() & (v["body"].isNull() | (v["body"] == "")), "empty_review")
    v["language"] = F.lower(F.regexp_replace(S.squish(raw("language")), "_", "-"))
    v["created_at"] = typed("created_at")
    channel = F.lower(S.squish(raw("channel")))
    v["channel"] = F.when(channel.isin(*REVIEW_CHANNELS), channel).when(channel.isNotNull(), F.lit("other"))
    rules.flag(channel.isNotNull() & ~channel.isin(*REVIEW_CHANNELS), "channel_unmapped")
    return rules


CAMPAIGN_CHANNELS = ("email", "sms", "push", "ads", "direct_mail", "other")


def _campaigns(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    """A campaign's channel outside the contract's list becomes ``other`` (flagged); a negative
    cost is rejected; an end before the start is flagged (the readout then uses the contacts'
    own send times)."""
    rules = Rules()
    v = rules.values
    for name in ("campaign_id", "name", "objective"):
        v[name] = S.squish(raw(name)) if name != "campaign_id" else raw(name)
    channel = F.regexp_replace(F.lower(S.squish(raw("channel"))), "[ -]", "_")
    v["channel"] = F.when(channel.isin(*CAMPAIGN_CHANNELS), channel).when(channel.isNotNull(), F.lit("other"))
    rules.flag(channel.isNotNull() & ~channel.isin(*CAMPAIGN_CHANNELS), "channel_unmapped")
    v["start_at"], v["end_at"] = typed("start_at"), typed("end_at")
    rules.flag(v["end_at"] < v["start_at"], "ends_before_start")
    cost = typed("cost_per_contact")
    v["cost_per_contact"] = cost
    rules.reject(cost < 0, "negative_cost_per_contact")
    v["currency"] = F.coalesce(F.upper(S.squish(raw("currency"))), F.lit(clean.default_currency))
    return rules


def _campaign_contacts(raw: Value, typed: Value, clean: CleanSettings, landing: LandingSettings) -> Rules:
    """Identifiers as for orders; ``contact_key`` (the key with the campaign) hashes them, so no
    key column is empty. A contact without ``is_control`` is a control when its variant is one of
    ``clean.control_variants`` (control, holdout, no e-mail, ...), else treated; its variant
    defaults to ``control`` or ``treatment`` from the flag. Event times before the assignment are
    flagged, not moved."""
    rules = Rules()
    v = rules.values
    v["campaign_id"], v["member_id"] = raw("campaign_id"), raw("member_id")
    _contact(rules, raw, clean)
    variant = S.squish(raw("variant"))
    flag = typed("is_control")
    named_control = F.lower(variant).isin(*[n.lower() for n in clean.control_variants])
    v["is_control"] = F.coalesce(flag, named_control, F.lit(False))
    rules.flag(flag.isNull() & variant.isNotNull(), "is_control_from_variant")
    rules.flag(flag.isNotNull() & named_control & ~flag, "variant_named_control_but_treated")
    v["variant"] = F.coalesce(variant, F.when(v["is_control"], F.lit("control")).otherwise(F.lit("treatment")))
    for name in ("assigned_at", "sent_at", "delivered_at", "opened_at", "clicked_at"):
        v[name] = typed(name)
    ids = [F.coalesce(v[name], F.lit("")) for name in ("member_id", "email", "phone")]
    v["contact_key"] = F.substring(F.sha2(F.concat_ws("\u0001", *ids), 256), 1, 32)
    rules.flag(v["sent_at"] < v["assigned_at"], "sent_before_assigned")
    rules.flag(v["is_control"] & v["sent_at"].isNotNull() & v["opened_at"].isNotNull(), "control_opened")
    return rules


STANDARDISERS = {
    "members": _members,
    "orders": _orders,
    "order_items": _order_items,
    "products": _products,
    "events": _events,
    "reviews": _reviews,
    "campaigns": _campaigns,
    "campaign_contacts": _campaign_contacts,
}


def _prepared(entity: Entity, clean: CleanSettings) -> dict[str, Column]:
    """Values several rules share, computed once in an earlier projection."""
    if entity.name == "members":
        return {COUNTRY: S.country(F.col("country"), clean.country_map, clean.default_country)}
    return {}


def standardise(bronze: DataFrame, entity: Entity, clean: CleanSettings, landing: LandingSettings) -> DataFrame:
    """Bronze rows -> typed, standardised rows with ``_flags``, ``_reasons``, ``_version``, ``_raw``
    (the bronze row as JSON, on rejected rows only).

    Built in layers (null-normalised text, then parsed values, then rules) so that each parse
    runs once per row and the plan stays small, however many rules read a value.
    """
    names = entity.column_names
    text = bronze.select(
        *[blank_to_null(F.col(c), landing.null_values).alias(c) for c in names],
        *[F.col(c).alias(RAW_PREFIX + c) for c in names],
        *LINEAGE,
    )
    parsed = [parse(F.col(c.name), c.kind, landing).alias(TYPED_PREFIX + c.name)
              for c in entity.columns if c.kind != "string"]
    layered = text.select("*", *parsed, *[v.alias(k) for k, v in _prepared(entity, clean).items()])
    if "phone" in names:   # parsed once, with the row's country (members) or the default one
        region = F.col(COUNTRY) if COUNTRY in layered.columns else F.lit(clean.default_country)
        layered = layered.select("*", phone_info(F.col("phone"), region, clean.default_country).alias(PHONE))

    def raw(name: str) -> Column:
        return F.col(name)

    def typed(name: str) -> Column:
        return F.col(TYPED_PREFIX + name) if entity.column(name).kind != "string" else F.col(name)

    rules = STANDARDISERS[entity.name](raw, typed, clean, landing)
    for column in entity.columns:
        if column.kind != "string" and column.on_invalid == "null":
            rules.flag(raw(column.name).isNotNull() & typed(column.name).isNull(), f"{column.name}_unparseable")
    typed_schema = entity.typed_schema
    values = [rules.values[c].cast(typed_schema[c].dataType).alias(c) for c in entity.silver_column_names]
    reasons = labels(rules.reasons)
    # The bronze row as JSON is only needed where the row goes to quarantine: building it for
    # every row cost a third of events' standardisation and doubled what clean caches.
    raw_json = F.to_json(F.struct(*[F.col(RAW_PREFIX + c).alias(c) for c in names]))
    frame = layered.select(
        *values,
        labels(rules.flags).alias(FLAGS),
        reasons.alias(REASONS),
        (rules.version if rules.version is not None else F.col(INGESTED_AT)).alias(VERSION),
        F.when(F.size(reasons) > 0, raw_json).alias(RAW),
        *LINEAGE,
    )
    if entity.version_column is None:
        # Every window below partitions by the key (with the batch, or with the line's content),
        # and so does silver_rows' latest_per_key: rows hashed on the key columns all of them share
        # satisfy each, so the rows are shuffled once instead of two or three times (the cached
        # standardised rows keep that partitioning). A derived line number is not known yet.
        frame = frame.repartition(*[k for k in entity.key if k != "line_no"])
    if entity.name == "order_items":
        frame = frame.transform(derive_line_numbers)
    if entity.version_column is None:
        frame = frame.transform(lambda df: flag_duplicate_keys(df, list(entity.key)))
    return frame


# Derived line numbers are negative, so they never meet a delivered (positive) one.
_LINE_BUCKETS = 200_000_000
_SAME_LINE_SLOTS = 10


def derive_line_numbers(items: DataFrame) -> DataFrame:
    """Missing ``line_no``: a number derived from the line itself, the same in every batch.

    ``-(1 + bucket * 10 + k)``: ``bucket`` hashes the line's content (product, quantity, unit
    price, discount), ``k`` (0-9) counts identical lines within one file. So a later batch's new
    line for an order gets a number of its own instead of line 1 again (which the MERGE would
    have written over the first line), and a re-delivered line keeps its number. Two identical
    lines in different files are taken for the same line, delivered again.
    """
    content = F.xxhash64("product_id", "quantity", "unit_price", "discount_amount")
    same = Window.partitionBy("order_id", content, SOURCE_FILE).orderBy(RECORD_HASH)
    k = F.least(F.row_number().over(same) - 1, F.lit(_SAME_LINE_SLOTS - 1))
    derived = -(F.lit(1) + F.pmod(content, F.lit(_LINE_BUCKETS)) * _SAME_LINE_SLOTS + k)
    line_no = F.coalesce(F.col("line_no"), derived.cast("int"))
    return items.select(*[line_no.alias(c) if c == "line_no" else F.col(c) for c in items.columns])


def flag_duplicate_keys(df: DataFrame, keys: list[str]) -> DataFrame:
    """Flag ``duplicate_key`` on rows whose key comes with different contents in the same
    batch (only one can reach silver, and with no version column the choice is arbitrary)."""
    batch = Window.partitionBy(BATCH_ID, *keys)
    clash = F.size(F.collect_set(RECORD_HASH).over(batch)) > 1
    flags = F.when(clash, F.array_union(F.col(FLAGS), F.array(F.lit("duplicate_key")))).otherwise(F.col(FLAGS))
    return df.select(*[flags.alias(c) if c == FLAGS else F.col(c) for c in df.columns])


def latest_per_key(df: DataFrame, keys: list[str]) -> DataFrame:
    """One row per key: the latest ``_version``, then latest ingest, then highest record hash."""
    order = Window.partitionBy(*keys).orderBy(
        F.col(VERSION).desc_nulls_last(), F.col(INGESTED_AT).desc(), F.col(RECORD_HASH).desc()
    )
    return df.select("*", F.row_number().over(order).alias("_rank")).where("_rank = 1").drop("_rank")


def is_newer(source: str = "s", target: str = "t") -> str:
    """MERGE condition: the source row supersedes the target row (same total order as above)."""
    s, t = source, target
    return (
        f"({s}.{VERSION} > {t}.{VERSION} OR {t}.{VERSION} IS NULL AND {s}.{VERSION} IS NOT NULL"
        f" OR ({s}.{VERSION} <=> {t}.{VERSION}) AND ({s}.{INGESTED_AT} > {t}.{INGESTED_AT}"
        f" OR {s}.{INGESTED_AT} = {t}.{INGESTED_AT} AND {s}.{RECORD_HASH} > {t}.{RECORD_HASH}))"
    )
