"""Typed settings loaded from ``conf/base.yml`` + ``conf/<env>.yml`` + ``--set key=value`` overrides.

Settings are data: table names, thresholds and column maps live here, not as literals in
transforms. Every key is validated at start so that a typo fails before Spark starts, with a
message naming the key and the fix.
"""
from __future__ import annotations

import os
import re
from datetime import date
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

ENVIRONMENTS = ("local", "cluster", "databricks")
_SHIPPED: dict[str, Any] = {}


def _shipped(key: str):
    """A default factory reading ``section.key`` of the project's own ``conf/base.yml``.

    Maps and rule lists (gender and status maps, blocked patterns, segments, tags, ...) have one
    source, base.yml; scalar defaults are written in code and tests/settings prove both agree.
    """
    def factory() -> Any:
        if not _SHIPPED:
            here = Path(__file__).resolve().parent
            repo = here.parents[1] / "conf" / "base.yml"
            text = (repo.read_text(encoding="utf-8") if repo.is_file()
                    else (resources.files("memberlake") / "conf" / "base.yml").read_text(encoding="utf-8"))
            _SHIPPED.update(yaml.safe_load(text))
        section, name = key.split(".")
        value = _SHIPPED[section][name]
        return type(value)(value) if isinstance(value, (dict, list)) else value
    return factory
Env = Literal["local", "cluster", "databricks"]


class SettingsError(ValueError):
    """Bad configuration or arguments; the message names the key and how to fix it."""


_OFFSET = re.compile(r"^(UTC|GMT)?[+-]\d{1,2}(:\d{2})?$")


def time_zone(value: str | None) -> str | None:
    """An IANA zone name (``Europe/London``) or a fixed offset (``+08:00``), as Spark accepts."""
    if value is None or _OFFSET.match(value):
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/London "
                         "or America/New_York, or an offset such as +08:00") from None
    return value


TimeZone = Annotated[str, AfterValidator(time_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class StorageSettings(_Strict):
    lakehouse: str | None = "data/lakehouse"
    catalog: str | None = None
    db_schema: str | None = Field(default=None, alias="schema")
    tables: dict[str, str] = {}

    @property
    def catalog_mode(self) -> bool:
        return bool(self.catalog and self.db_schema)


class LandingSettings(_Strict):
    path: str | None = "data/landing"
    timezone: TimeZone = "UTC"
    encoding: str = "UTF-8"
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    multiline: bool = True
    null_values: list[str] = Field(default_factory=_shipped("landing.null_values"))
    decimal_comma: bool = False
    timestamp_formats: list[str] = Field(default_factory=_shipped("landing.timestamp_formats"))
    date_formats: list[str] = Field(default_factory=_shipped("landing.date_formats"))
    default_source: str = "default"
    column_map: dict[str, dict[str, str]] = {}
    # Per entity, contract column -> the value it takes when a file has no such column.
    column_defaults: dict[str, dict[str, str | int | float | bool]] = {}


class SparkSettings(_Strict):
    master: str | None = None
    app_name: str = "memberlake"
    shuffle_partitions: int = Field(default=8, ge=1)
    delta_package: str = "io.delta:delta-spark_2.13:4.0.1"
    driver_memory: str | None = None
    # Spark jobs a memberlake job runs at once (threads sharing the session): entities in ingest
    # and clean, tables in publish, maintain and forget. 1 = one after another.
    concurrent_jobs: int = Field(default=2, ge=1)
    # A driver JVM this process starts maps Spark's classes from an archive made once
    # (memberlake.class_sharing; job starts ~3.5 s faster (median)). No effect under spark-submit.
    class_sharing: bool = True
    conf: dict[str, str] = {}


class CleanSettings(_Strict):
    default_country: str = "US"
    default_currency: str = "USD"
    max_age_years: int = Field(default=110, ge=1)
    max_quantity: int = Field(default=1000, ge=1)
    max_order_amount: float = Field(default=100000, gt=0)
    gender_map: dict[str, str] = Field(default_factory=_shipped("clean.gender_map"))
    status_map: dict[str, str] = Field(default_factory=_shipped("clean.status_map"))
    channel_map: dict[str, str] = Field(default_factory=_shipped("clean.channel_map"))
    country_map: dict[str, str] = Field(default_factory=_shipped("clean.country_map"))
    # Campaign contacts without is_control: a variant with one of these names (lower-cased,
    # whitespace collapsed) is the control group.
    control_variants: list[str] = Field(default_factory=_shipped("clean.control_variants"))


class GenerateSettings(_Strict):
    scale: float = Field(default=0.005, gt=0)
    seed: int = 42
    start_date: date = date(2023, 1, 1)
    cutoff_date: date = date(2024, 9, 30)
    end_date: date = date(2024, 12, 31)
    # Clickstream events per member record (10 = 10M events at scale 1).
    events_per_record: float = Field(default=10.0, gt=0)
    # cutoff_study (churners stop before the churn cutoff) or steady (no break in demand)
    demand: Literal["cutoff_study", "steady"] = "cutoff_study"

    @model_validator(mode="after")
    def _dates_in_order(self) -> "GenerateSettings":
        if not self.start_date < self.cutoff_date < self.end_date:
            raise ValueError("start_date < cutoff_date < end_date must hold")
        return self


class MatchingSettings(_Strict):
    """Fellegi-Sunter matching of member records (identity/matching.py)."""

    enabled: bool = True
    # Blocking rules: SQL expressions over the prepared record (first_name, last_name, birth_date,
    # street, postcode, city; lower-cased); two records are compared when one rule's keys all agree.
    # Each rule pairs facts of two different kinds (name, birth date, address), so a pair with a
    # typo in any one field still meets in some rule (docs/identity.md, "Blocking").
    blocking: list[list[str]] = [
        ["postcode", "substring(last_name, 1, 3)"],
        ["birth_date", "substring(first_name, 1, 1)"],
        ["soundex(last_name)", "city", "substring(first_name, 1, 1)"],
        # both names by sound, in either order (first and last swapped)
        ["if(first_name IS NULL OR last_name IS NULL, NULL, least(soundex(first_name), soundex(last_name)))",
         "greatest(soundex(first_name), soundex(last_name))"],
        ["birth_date", "substring(last_name, 1, 1)"],
        ["birth_date", "postcode"],
        # street number and street name apart: a typo in one leaves the other
        ["nullif(regexp_extract(street, '^([0-9]+)', 1), '')", "postcode"],
        ["nullif(regexp_replace(street, r'[^\\p{L}]', ''), '')", "city", "substring(first_name, 1, 1)"],
        ["nullif(regexp_replace(street, r'[^\\p{L}]', ''), '')", "city", "substring(last_name, 1, 1)"],
        # the whole address (letters only, so a space or hyphen typo leaves it), and the street
        # name with both initials in either order within the postcode's first digit (region)
        ["nullif(regexp_extract(street, '^([0-9]+)', 1), '')", "nullif(regexp_replace(street, r'[^\\p{L}]', ''), '')"],
        ["nullif(regexp_replace(street, r'[^\\p{L}]', ''), '')",
         "if(first_name IS NULL OR last_name IS NULL, NULL, concat(least(left(first_name, 1), left(last_name, 1)), "
         "greatest(left(first_name, 1), left(last_name, 1))))",
         "substring(postcode, 1, 1)"],
        # the street name within its postcode (city and initials mistyped); the house number with
        # the first name or the surname's sound (a moved or misspelt street); birth date and city
        ["nullif(regexp_replace(street, r'[^\\p{L}]', ''), '')", "postcode"],
        ["nullif(regexp_extract(street, '^([0-9]+)', 1), '')", "first_name"],
        ["nullif(regexp_extract(street, '^([0-9]+)', 1), '')", "soundex(last_name)"],
        ["birth_date", "city"],
    ]
    # Blocks with more records than this are not paired (reported in the run log): a giant block
    # would square into millions of useless pairs.
    max_block_size: int = Field(default=500, ge=2)
    random_pairs: int = Field(default=200_000, ge=1000)
    em_iterations: int = Field(default=50, ge=1)
    # EM stops when no m probability or match share moves by more than this in an iteration. At
    # 1e-6 a session whose share is near 1 creeps on for thousands of iterations without the
    # weights moving by 0.1 bit (febrl1); Splink stops at 1e-4.
    em_tolerance: float = Field(default=1e-5, gt=0, lt=0.01)
    # A pair becomes an identity edge at this match probability (0.9 = 3.2 bits of weight)...
    # Chosen on the generator and febrl1/febrl2 with `evaluate identity --thresholds`: the
    # generator's households weigh 1.7 bits at most, the Febrl duplicates with a replaced first
    # name 2 to 6 (docs/identity.md, "Threshold and review").
    threshold: float = Field(default=0.9, gt=0, lt=1)
    # ...unless a veto holds (SQL over the <field>_level columns; 0 = different, -1 = missing).
    # None by default: households stay apart by the weights of their different first names and
    # birth dates (docs/identity.md, "Decision").
    veto: list[str] = []
    # Exact name agreement weighted by the name's frequency.
    tf_fields: list[str] = ["first_name", "last_name"]
    # false: score with the parameters saved in match_parameters (retrain when there are none).
    retrain: bool = True
    seed: int = 42


class IdentitySettings(_Strict):
    # Identifier values never used to link records, per identifier type (regexes, full match).
    blocked: dict[str, list[str]] = Field(default_factory=_shipped("identity.blocked"))
    # An email or phone seen on more member records than this within one source is shared
    # (a family inbox, a shop's phone): all its edges are dropped and audited.
    max_members_per_source: dict[str, int] = {"email": 1, "phone": 1}
    # An identifier whose member records carry more distinct values of another identifier than
    # this is shared: an e-mail on records with two different phones is a household inbox.
    conflicts: dict[str, dict[str, int]] = {"email": {"phone": 1}}
    # A device seen with more cookies than this is shared (a family tablet, a kiosk).
    max_cookies_per_device: int = Field(default=4, ge=1)
    # A device on which more member ids than this logged in is shared (0 = no limit).
    max_members_per_device: int = Field(default=1, ge=0)
    # Components above this size are split at their weakest edges (split_oversized) and any
    # still above it are reported in identity_audit.
    max_component_size: int = Field(default=200, ge=2)
    split_oversized: bool = True
    # Edge strength per identifier-type pair ("src-dst", either order); weakest split first.
    edge_strength: dict[str, int] = {
        "member-member_id": 5, "member-email": 4, "member-phone": 4, "member_id-email": 3, "member_id-phone": 3,
        "email-phone": 2, "cookie-member_id": 2, "device-member_id": 2, "cookie-device": 1, "member-member": 3}
    max_rounds: int = Field(default=60, ge=1)
    matching: MatchingSettings = MatchingSettings()


class TrackingSettings(_Strict):
    # MLflow tracking server or store; null means $MLFLOW_TRACKING_URI, else a sqlite file in
    # local_dir, by default <lakehouse>/_mlflow (so a laptop needs no server and two lakehouses
    # never share a registry).
    tracking_uri: str | None = None
    registry_uri: str | None = None
    local_dir: str | None = None
    experiment_prefix: str = "memberlake"


class BasketSettings(_Strict):
    # Item granularity: "product" or a products column such as category, subcategory or brand.
    level: str = "product"
    # A basket is one order, or everything a person bought within window_days before the as-of date.
    basket_by: Literal["order", "person"] = "order"
    window_days: int = Field(default=365, ge=1)
    # Below 1: a fraction of baskets; 1 or more: an absolute basket count.
    min_support: float = Field(default=0.002, gt=0)
    min_confidence: float = Field(default=0.05, ge=0, le=1)
    min_lift: float = Field(default=1.0, ge=0)
    # FP-Growth partitions; null = spark.default.parallelism.
    num_partitions: int | None = Field(default=None, ge=1)
    # Extra mining per value of these columns: silver_orders columns (channel, store_id) or
    # member_profile columns of the buyer (segment, value_tier, lifecycle_stage).
    segment_by: list[str] = Field(default_factory=_shipped("basket.segment_by"))
    # Segments with fewer baskets than this are skipped (reported), so one tiny segment does not
    # lower the support threshold of the shared mining pass.
    min_segment_baskets: int = Field(default=500, ge=1)
    top_n: int = Field(default=10, ge=1)
    # Recommendations look at what a person bought in the last recent_days.
    recent_days: int = Field(default=180, ge=1)


class ClvSettings(_Strict):
    # Expected purchases and CLV over this many days after the as-of date.
    horizon_days: int = Field(default=365, ge=1)
    # Annual discount rate for CLV (applied monthly).
    discount_rate: float = Field(default=0.10, ge=0, lt=1)
    # The calibration/holdout report fits on data up to as-of minus holdout_days.
    holdout_days: int = Field(default=90, ge=1)
    max_iter: int = Field(default=200, ge=1)
    # Transaction model for CLV: "auto" fits every candidate on the calibration period and keeps
    # the one with the lowest holdout error per person; or pin one of them.
    model: Literal["auto", "bgnbd", "mbgnbd", "pareto_nbd"] = "auto"
    candidates: list[Literal["bgnbd", "mbgnbd", "pareto_nbd"]] = Field(
        default_factory=lambda: ["bgnbd", "mbgnbd", "pareto_nbd"], min_length=1)
    # Per-person intervals of p_alive, expected purchases and CLV from the parameters' uncertainty:
    # interval_samples draws from their asymptotic distribution (0 = no intervals), central
    # interval_level quantiles; the draws are seeded.
    interval_level: float = Field(default=0.9, gt=0, lt=1)
    interval_samples: int = Field(default=100, ge=0)
    interval_seed: int = 42


class LoyaltySettings(_Strict):
    # Component weights of the loyalty index (docs/value.md); a person's missing components are
    # left out and the others rescaled.
    weights: dict[str, float] = {"repeat": 0.30, "value": 0.25, "engagement": 0.15, "breadth": 0.10,
                                 "sentiment": 0.20}
    # Tier name -> lowest index (0-100) of the tier; one tier must start at 0.
    tiers: dict[str, float] = {"devoted": 70.0, "loyal": 50.0, "casual": 30.0, "detached": 0.0}
    # Sentiment level and trend as of the snapshot: trend = mean of the last trend_days minus the
    # trend_days before (reviews.trend_days is the reviews job's own).
    trend_days: int = Field(default=180, ge=1)

    @model_validator(mode="after")
    def _complete(self) -> "LoyaltySettings":
        expected = {"repeat", "value", "engagement", "breadth", "sentiment"}
        if set(self.weights) != expected or any(w < 0 for w in self.weights.values()) or not sum(self.weights.values()):
            raise ValueError(f"weights must give each of {sorted(expected)} a weight >= 0 (not all 0), got "
                             f"{self.weights}")
        if not self.tiers or min(self.tiers.values()) != 0 or max(self.tiers.values()) > 100:
            raise ValueError(f"tiers: floors within 0-100 and one tier starting at 0, got {self.tiers}")
        return self


class ValueSettings(_Strict):
    window_days: int = Field(default=365, ge=1)
    # Ordered (first match wins) named segments: SQL over r_score, f_score, m_score.
    segments: list[dict[str, str]] = Field(default_factory=_shipped("value.segments"))
    # m_score at or above -> tier name.
    value_tiers: dict[int, str] = {5: "platinum", 4: "gold", 3: "silver"}
    new_days: int = Field(default=90, ge=0)
    default_gap_days: int = Field(default=90, ge=1)
    active_factor: float = Field(default=1.5, gt=0)
    at_risk_factor: float = Field(default=3.0, gt=0)
    churn_days: int = Field(default=365, ge=1)
    age_bands: list[int] = [18, 25, 35, 45, 55, 65]
    top_preferences: int = Field(default=3, ge=1)
    # Tag name -> SQL rule over the profile's columns.
    tags: dict[str, str] = Field(default_factory=_shipped("value.tags"))
    clv: ClvSettings = ClvSettings()
    loyalty: LoyaltySettings = LoyaltySettings()

    @model_validator(mode="after")
    def _segments_have_name_and_rule(self) -> "ValueSettings":
        for i, seg in enumerate(self.segments):
            if set(seg) != {"name", "rule"}:
                raise ValueError(f"segments[{i}] must have exactly the keys name and rule, got {sorted(seg)}")
        return self

    def segment_rules(self) -> list[tuple[str, str]]:
        return [(s["name"], s["rule"]) for s in self.segments]


class SentimentModelSettings(_Strict):
    # Weak labels from ratings: at least positive_min is positive, at most negative_max negative.
    positive_min: int = Field(default=4, ge=1, le=5)
    negative_max: int = Field(default=2, ge=1, le=5)
    # A language gets a trained model only with this many labelled reviews, each class this often.
    min_labelled: int = Field(default=200, ge=10)
    min_per_class: int = Field(default=20, ge=1)
    # Cross-fitting folds: every review is scored by models that did not see it.
    folds: int = Field(default=3, ge=2, le=10)
    num_features: int = Field(default=262144, ge=1024)
    min_doc_freq: int = Field(default=2, ge=0)
    reg_param: float = Field(default=0.01, ge=0)
    max_iter: int = Field(default=50, ge=1)
    # "auto": per language the method with the best held-out ROC AUC; or pin one.
    method: Literal["auto", "lexicon", "model", "blend"] = "auto"
    # Each language's refit is registered as "<registered_model>_<language>"; it becomes champion
    # when its ROC AUC beats the champion's on the same reviews by more than min_improvement.
    registered_model: str = "memberlake-sentiment"
    min_improvement: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _labels_apart(self) -> "SentimentModelSettings":
        if self.negative_max >= self.positive_min:
            raise ValueError(f"negative_max ({self.negative_max}) must be below positive_min ({self.positive_min})")
        return self


class ReviewSettings(_Strict):
    # Score below negative_below -> negative, above positive_above -> positive, else neutral.
    negative_below: float = Field(default=-0.05, ge=-1, le=1)
    positive_above: float = Field(default=0.05, ge=-1, le=1)
    # person_sentiment's trend: mean of the last trend_days minus the trend_days before them.
    trend_days: int = Field(default=180, ge=1)
    # language -> aspect -> keywords (English: whole words; Chinese: substrings).
    aspects: dict[str, dict[str, list[str]]] = Field(default_factory=_shipped("reviews.aspects"))
    model: SentimentModelSettings = SentimentModelSettings()

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> "ReviewSettings":
        if self.negative_below > self.positive_above:
            raise ValueError(f"negative_below ({self.negative_below}) must not exceed positive_above "
                             f"({self.positive_above})")
        unknown = [lang for lang in self.aspects if lang not in ("en", "zh")]
        if unknown:
            raise ValueError(f"aspects: languages {unknown} have no analyser; use en or zh")
        return self


class ForecastBacktestSettings(_Strict):
    # Rolling origin: `windows` forecasts of `horizon` periods, their cutoffs `step` periods apart
    # (null = horizon), the last one ending at the last complete period.
    windows: int = Field(default=3, ge=1)
    step: int | None = Field(default=None, ge=1)
    # Also a window from one season before the forecast origin: the periods ahead are then scored
    # on the same calendar periods a season earlier (a year-end peak is in the backtest).
    season_window: bool = True


class ForecastSettings(_Strict):
    # Series grain: category_week (default), category_store_week, product_week or channel_day.
    grain: Literal["category_week", "category_store_week", "product_week", "channel_day"] = "category_week"
    # What is forecast per series: net units (line quantities) and net revenue (lines' gross - discount).
    measures: list[Literal["units", "revenue"]] = Field(default_factory=lambda: ["units", "revenue"], min_length=1)
    # Periods ahead (weeks; days for channel_day). --horizon-weeks sets it.
    horizon: int = Field(default=13, ge=1)
    # Seasonal period in periods; null = 52 for weekly grains, 7 for channel_day.
    season_length: int | None = Field(default=None, ge=2)
    backtest: ForecastBacktestSettings = ForecastBacktestSettings()
    # A backtest needs this many periods of history before its first cutoff; a shorter series gets
    # fallback_model, unscored.
    min_train: int = Field(default=8, ge=2)
    fallback_model: Literal["HistoricAverage", "Naive"] = "HistoricAverage"
    # No demand in the last dormant_periods: listed in forecast_series as dormant, not forecast.
    dormant_periods: int = Field(default=26, ge=1)
    # Series per applyInPandas group (one task fits a group); smaller = more parallel tasks.
    series_per_group: int = Field(default=50, ge=1)
    # Pin one model for every series (must be in its candidate set), or "auto": best on the backtest.
    # The names are memberlake.forecast.models.ORDER's (a test keeps the two equal).
    model: Literal["auto", "Combination", "AutoETS", "AutoTheta", "MSTL", "MSTL_log", "CrostonSBA", "TSB", "IMAPA",
                   "ADIDA", "SeasonalNaive", "Naive", "HistoricAverage"] = "auto"
    # Series' 80%/95% bounds: "backtest" = the chosen model's own, scaled until they would have held
    # its backtest errors (where a series has enough backtest periods), "model" = the model's own.
    intervals: Literal["backtest", "model"] = "backtest"
    # Customer base: weekly repeat purchases, active members and revenue from the CLV model.
    customer_base: bool = True
    # Central level of the customer base's lower/upper bounds (parameter and persons' variance).
    customer_base_level: float = Field(default=0.9, gt=0, lt=1)
    # Report: actual vs forecast charts for this many series (largest by history).
    report_series: int = Field(default=4, ge=0)

    @property
    def step(self) -> int:
        return self.backtest.step or self.horizon

    def season(self) -> int:
        return self.season_length or (7 if self.grain == "channel_day" else 52)


class CampaignPlan(_Strict):
    """One campaign's plan (``memberlake campaign plan --campaign ID``)."""

    # Who may be contacted: a SQL rule over member_profile's columns, the latest clv and
    # churn_scores (clv_*, churn_probability, risk_band) and uplift where scored.
    audience: str = "true"
    # Variant -> share of the audience; one of them is the control group (not contacted).
    variants: dict[str, float] = {"treatment": 0.9, "control": 0.1}
    control: str = "control"
    # Stratify the split by this audience column (e.g. value_tier): exact shares per stratum.
    stratify_by: str | None = None
    # The hash of (salt, campaign, person) assigns; a new salt re-draws the split.
    salt: str = ""
    channel: Literal["email", "sms", "push", "ads", "direct_mail", "other"] = "email"
    # The send date (default: the plan's as-of date); contact history counts up to it.
    send_at: date | None = None
    # Keep at most this many persons (those with the lowest hash, i.e. a random sample).
    max_contacts: int | None = Field(default=None, ge=1)
    # Target only the target_top eligible persons ranked highest by rank_by (SQL over the audience
    # columns; uplift_scores give ``uplift``), then split them: the control comes from the same people.
    target_top: int | None = Field(default=None, ge=1)
    rank_by: str = "uplift * coalesce(clv, 1.0)"

    @model_validator(mode="after")
    def _shares(self) -> "CampaignPlan":
        if self.control not in self.variants:
            raise ValueError(f"control {self.control!r} is not one of the variants {sorted(self.variants)}: "
                             "name the holdout variant in `control`")
        if len(self.variants) < 2 or any(v <= 0 for v in self.variants.values()):
            raise ValueError("variants: give at least a treatment and the control, each with a share > 0")
        if abs(sum(self.variants.values()) - 1.0) > 1e-6:
            raise ValueError(f"variants: shares add up to {sum(self.variants.values()):g}, not 1")
        return self


class CampaignSettings(_Strict):
    # Outcomes count in the readout_days after a contact's sent_at (assigned_at, then the
    # campaign's start_at when it has none); CUPED's pre-period is as long, just before.
    readout_days: int = Field(default=14, ge=1)
    # Two-sided confidence level of the intervals and the test of each difference.
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # A split whose chi-square test against the planned shares has a p-value below this is
    # flagged as a sample-ratio mismatch (the readout is then not to be trusted).
    srm_p_value: float = Field(default=0.001, gt=0, lt=1)
    # Planned shares per campaign and variant (e.g. {"C1": {"control": 0.1, "offer": 0.9}}): the
    # sample-ratio test needs them; a campaign not listed gets no such test.
    planned_split: dict[str, dict[str, float]] = {}
    cuped: bool = True
    # Planning (``memberlake campaign plan``): suppression of recently and often contacted
    # persons (contacts and earlier plans count), and the power report's targets.
    min_days_between_contacts: int = Field(default=7, ge=0)
    frequency_cap: int = Field(default=4, ge=0)         # contacts within frequency_cap_days; 0 = no cap
    frequency_cap_days: int = Field(default=30, ge=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    plans: dict[str, CampaignPlan] = {}


class SessionSettings(_Strict):
    # A gap longer than this ends a session; a gap of exactly this length does not.
    timeout_minutes: float = Field(default=30, gt=0)
    # Sessions longer than this are cut into pieces of this length from the session's start.
    max_length_hours: float = Field(default=24, gt=0)
    # Also start a session at local midnight in this zone (null = no midnight split).
    midnight_timezone: TimeZone | None = None
    # Also start a session when an event carries utm values different from the visit's last ones.
    split_on_campaign: bool = True
    # Incremental runs re-sessionize visitors within this window; older new events are "late".
    lateness_days: float = Field(default=3, ge=0)
    page_view_types: list[str] = ["page_view", "product_view", "search"]
    conversion_types: list[str] = ["purchase"]
    # Ordered channel rules (first match wins): SQL over lower-cased source, medium, referrer.
    channels: list[dict[str, str]] = Field(default_factory=_shipped("sessions.channels"))
    # Attribution: touchpoints within this many days before a conversion.
    lookback_days: float = Field(default=30, gt=0)
    time_decay_half_life_days: float = Field(default=7, gt=0)
    markov_order: int = Field(default=1, ge=1, le=4)
    funnel_steps: list[str] = ["product_view", "add_to_cart", "checkout", "purchase"]
    # Paths are the first path_pages page views of a session; top lists keep top_n rows.
    path_pages: int = Field(default=3, ge=1)
    top_n: int = Field(default=20, ge=1)


class SegmentationSettings(_Strict):
    algorithm: Literal["kmeans", "bisecting_kmeans", "gaussian_mixture"] = "kmeans"
    # k is chosen in [k_min, k_max] by silhouette (ClusteringEvaluator, squared euclidean).
    k_min: int = Field(default=3, ge=2)
    k_max: int = Field(default=8, ge=2)
    # Feature columns (see docs/models.md); log_features are log1p-transformed before scaling.
    features: list[str] = ["recency_days", "orders_365d", "spend_365d", "avg_order_value", "category_breadth",
                           "discount_share", "tenure_days", "sessions_90d"]
    log_features: list[str] = ["recency_days", "orders_365d", "spend_365d", "avg_order_value", "category_breadth",
                               "tenure_days", "sessions_90d"]
    # k is chosen on a sample of at most this many persons; the chosen model then assigns everyone.
    max_fit_rows: int = Field(default=200_000, ge=100)
    max_iter: int = Field(default=30, ge=1)
    seed: int = 42

    @model_validator(mode="after")
    def _k_range(self) -> "SegmentationSettings":
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        unknown = sorted(set(self.log_features) - set(self.features))
        if unknown:
            raise ValueError(f"log_features {unknown} are not in features")
        return self


class ChurnSettings(_Strict):
    # Churned = no completed order in the horizon_days after the as-of date.
    horizon_days: int = Field(default=90, ge=1)
    # Training stacks this many as-of dates, step_days apart; validation and test dates follow,
    # each horizon_days later, so no label window overlaps a later split's as-of date.
    train_dates: int = Field(default=6, ge=1)
    step_days: int = Field(default=30, ge=1)
    # Candidate models and their parameter grids (MLlib parameter names).
    candidates: dict[Literal["logistic_regression", "random_forest", "gbt"], dict[str, list[Any]]] = {
        "logistic_regression": {"regParam": [0.0, 0.01]},
        "random_forest": {"numTrees": [100], "maxDepth": [8]},
        "gbt": {"maxIter": [40], "maxDepth": [4]},
    }
    # Model selection (validation split) and the champion rule use this metric.
    metric: Literal["areaUnderROC", "areaUnderPR"] = "areaUnderROC"
    # The selected candidate is fitted again on the training + validation dates (the newest
    # labelled period) before it is tested and registered. The refitted model has seen the
    # validation labels, so the champion rule then compares on the test split instead.
    refit: bool = True
    # A new model becomes champion only when its metric (on the split the rule compares on)
    # beats the champion's on the same rows by more than this.
    min_improvement: float = Field(default=0.0, ge=0)
    # Threshold for precision/recall/F1: top_decile, max_f1, or a probability.
    threshold: str = "top_decile"
    # Candidate fits run this many at a time.
    parallelism: int = Field(default=2, ge=1)
    # Training rows above this are sampled down (seeded; validation and test are never sampled).
    max_train_rows: int | None = Field(default=1_000_000, ge=100)
    class_weights: bool = True
    seed: int = 42
    registered_model: str = "memberlake-churn"
    # Risk band by probability: the first band whose lower bound the probability reaches.
    risk_bands: dict[str, float] = {"high": 0.6, "medium": 0.3, "low": 0.0}
    # Below this many rows (or with one class only) in a split, churn training is skipped.
    min_rows: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _threshold_rule(self) -> "ChurnSettings":
        if self.threshold not in ("top_decile", "max_f1"):
            try:
                value = float(self.threshold)
            except ValueError:
                raise ValueError(f"threshold {self.threshold!r}: use top_decile, max_f1 or a probability") from None
            if not 0 < value < 1:
                raise ValueError(f"threshold {value}: a probability must be between 0 and 1")
        if not self.candidates:
            raise ValueError("candidates: give at least one of logistic_regression, random_forest, gbt")
        return self


class UpliftSettings(_Strict):
    enabled: bool = True
    # The outcome the models learn: converted (any completed order) or visited (any session).
    outcome: Literal["converted", "visited"] = "converted"
    # Campaigns pooled for training (empty: every campaign with a control group).
    campaigns: list[str] = []
    learners: list[Literal["t_learner", "class_transformation"]] = ["t_learner", "class_transformation"]
    # MLlib classifiers (parameter names as in MLlib) tried with every learner.
    classifiers: dict[Literal["logistic_regression", "gbt"], dict[str, Any]] = {
        "logistic_regression": {"regParam": 0.01},
        "gbt": {"maxIter": 30, "maxDepth": 3},
    }
    # Contacts held out for the test, then the share of the rest for validation (model choice).
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    validation_fraction: float = Field(default=0.25, gt=0, lt=1)
    # uplift@k: the share of contacts with the highest predicted uplift.
    k: float = Field(default=0.3, gt=0, lt=1)
    # Fewer contacts than this in an arm of any split: no model (the Qini would be noise).
    min_rows: int = Field(default=200, ge=1)
    seed: int = 42
    registered_model: str = "memberlake-uplift"
    min_improvement: float = Field(default=0.0, ge=0)


class ModelSettings(_Strict):
    # Persons with a completed order in the active_days up to an as-of date are modelled and scored.
    active_days: int = Field(default=365, ge=1)
    # Trend features compare the last trend_days with the trend_base_days before them.
    trend_days: int = Field(default=30, ge=1)
    trend_base_days: int = Field(default=90, ge=1)
    engagement_days: int = Field(default=90, ge=1)
    # sentiment_trend: mean review score of the last sentiment_trend_days minus the ones before.
    sentiment_trend_days: int = Field(default=180, ge=1)
    # Channel-mix features: share of orders per channel value.
    channels: list[str] = ["online", "store", "app"]
    # Churn features btyd_p_alive and btyd_expected_purchases (over churn.horizon_days) from this
    # transaction model, fitted at every as-of date on the history up to it; none leaves them out.
    btyd_model: Literal["bgnbd", "mbgnbd", "pareto_nbd", "none"] = "bgnbd"
    btyd_max_iter: int = Field(default=200, ge=1)
    segmentation: SegmentationSettings = SegmentationSettings()
    churn: ChurnSettings = ChurnSettings()
    uplift: UpliftSettings = UpliftSettings()


class PrivacySettings(_Strict):
    # The HMAC key for pseudonyms comes from this environment variable (never from a config file),
    key_env: str = "MEMBERLAKE_PII_KEY"
    # or, on Databricks, from a secret scope.
    secret_scope: str | None = None
    secret_key: str | None = None
    # Without a key: fail (true) or, for a local try-out, use a fixed insecure key (false).
    require_key: bool = True
    # Columns that are PII: keyed hashes in every table built from silver (and e-mail and phone
    # nodes of the identity graph); masked in exports for analysts.
    pii_columns: list[str] = ["email", "phone", "first_name", "last_name", "street"]
    # Gold keeps only the year of a birth date (1 January), enough for age bands.
    generalise_birth_date: bool = True
    # VACUUM retention after a right-to-be-forgotten request: older table files are removed.
    forget_vacuum_hours: float = Field(default=168, ge=0)


class MaintenanceSettings(_Strict):
    # OPTIMIZE ... ZORDER BY these columns (the main lookup keys); other tables are compacted only.
    zorder: dict[str, list[str]] = Field(default_factory=_shipped("maintenance.zorder"))
    # VACUUM removes files unreferenced for longer than this (time travel reaches back this far).
    vacuum_retention_hours: float = Field(default=168, ge=0)
    # Table properties set on every table (e.g. delta.logRetentionDuration).
    properties: dict[str, str] = Field(default_factory=_shipped("maintenance.properties"))


class CheckRule(_Strict):
    """One data-quality check on a table a job writes, evaluated before the job's outputs are
    published (see ops/checks.py)."""

    table: str
    check: Literal["completeness", "validity", "uniqueness", "row_count_change", "freshness"]
    # completeness / freshness: one column; uniqueness: comma-separated key columns
    column: str | None = None
    # validity: a SQL boolean over the table's columns (null counts as not valid)
    rule: str | None = None
    # completeness, validity, uniqueness: the least share of rows that must pass
    min: float | None = Field(default=None, ge=0, le=1)
    # row_count_change: the largest relative change of the row count against the last check
    max_change: float | None = Field(default=None, ge=0)
    # freshness: the newest value of ``column`` (a timestamp or date) at most this old
    max_age_days: float | None = Field(default=None, gt=0)
    # error fails the job (its outputs stay unpublished); warn and info only alert
    severity: Literal["info", "warn", "error"] = "warn"

    @model_validator(mode="after")
    def _complete(self) -> "CheckRule":
        needs = {"completeness": ("column", "min"), "validity": ("rule", "min"), "uniqueness": ("column", "min"),
                 "row_count_change": ("max_change",), "freshness": ("column", "max_age_days")}[self.check]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.check} check on {self.table} needs {', '.join(missing)}")
        return self


class MonitoringSettings(_Strict):
    # Data-quality checks, per table and column; every evaluation goes to dq_alerts, every failure
    # to alerts (and the webhook).
    checks: list[CheckRule] = Field(default_factory=_shipped("monitoring.checks"), validate_default=True)
    # Alerts are also POSTed here as JSON when set (e.g. a Slack or Teams incoming webhook).
    webhook_url: str | None = None
    webhook_timeout_s: float = Field(default=10, gt=0)
    # Model monitoring at each scoring run: alert when a churn feature's or the score's
    # population stability index against the model's reference population exceeds psi_limit,
    # or when the realised ROC AUC of an earlier scoring date (its horizon passed) is below auc_min.
    psi_limit: float = Field(default=0.25, gt=0)
    auc_min: float = Field(default=0.6, gt=0, lt=1)


class Settings(_Strict):
    env: Env = "local"
    storage: StorageSettings = StorageSettings()
    landing: LandingSettings = LandingSettings()
    spark: SparkSettings = SparkSettings()
    clean: CleanSettings = CleanSettings()
    generate: GenerateSettings = GenerateSettings()
    identity: IdentitySettings = IdentitySettings()
    tracking: TrackingSettings = TrackingSettings()
    basket: BasketSettings = BasketSettings()
    value: ValueSettings = ValueSettings()
    sessions: SessionSettings = SessionSettings()
    reviews: ReviewSettings = ReviewSettings()
    forecast: ForecastSettings = ForecastSettings()
    campaigns: CampaignSettings = CampaignSettings()
    models: ModelSettings = ModelSettings()
    privacy: PrivacySettings = PrivacySettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    def require(self, *keys: str) -> None:
        """Fail fast when a value a job needs is missing (e.g. ``landing.path`` on a cluster)."""
        for key in keys:
            section, name = key.split(".", 1)
            value = getattr(getattr(self, section), "db_schema" if name == "schema" else name)
            if value in (None, ""):
                raise SettingsError(
                    f"{key} is required for env '{self.env}': pass it with --set {key}=... "
                    f"(or the matching --{name} option) or set it in conf/{self.env}.yml"
                )


def conf_dir(explicit: str | None = None) -> Path:
    """Where the YAML files are: argument, $MEMBERLAKE_CONF_DIR, ./conf, the repo, the wheel."""
    if explicit:
        if not (Path(explicit) / "base.yml").is_file():
            raise SettingsError(f"--conf-dir {explicit}: conf/base.yml not found there")
        return Path(explicit)
    candidates = [os.environ.get("MEMBERLAKE_CONF_DIR"), "conf"]
    here = Path(__file__).resolve().parent
    candidates += [str(here.parents[1] / "conf"), str(here / "conf")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "base.yml").is_file():
            return Path(candidate)
    # The wheel's own copy, also when it is imported from a zip (spark-submit --py-files).
    packaged = resources.files("memberlake") / "conf"
    if (packaged / "base.yml").is_file():
        return packaged  # type: ignore[return-value]  # a Traversable: / , is_file and read_text suffice
    raise SettingsError(
        "conf/base.yml not found: run from the project folder, pass --conf-dir DIR "
        "or set MEMBERLAKE_CONF_DIR"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(item: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (key path, typed value).

    The path is split at dots until it reaches a map setting (``spark.conf``, ``value.tags``,
    ``storage.tables`` ...): the rest is one map key, so ``spark.conf.spark.sql.shuffle.partitions=16``
    sets the Spark option ``spark.sql.shuffle.partitions``. The value is parsed as YAML, except for
    a setting that holds text: it takes the text as given (``clean.default_country=NO`` is Norway,
    not YAML's false; ``value.tags.x=1`` is the rule ``1``).
    """
    if "=" not in item:
        raise SettingsError(f"--set {item!r}: expected section.key=value, e.g. --set clean.max_quantity=500")
    key, raw = item.split("=", 1)
    parts = _key_path([p for p in key.strip().split(".") if p])
    if len(parts) < 2:
        raise SettingsError(f"--set {item!r}: the key must name a section and a key, e.g. spark.master")
    text = _holds_text(parts)
    if text == "optional" and raw.strip() in ("null", "~"):
        return parts, None
    quoted = len(raw.strip()) >= 2 and raw.strip()[0] == raw.strip()[-1] and raw.strip()[0] in "'\""
    if text and not quoted:  # a quoted value is YAML's string: ';' is ;
        return parts, raw.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _field_type(parts: list[str]) -> tuple[Any, int]:
    """The annotation the key path leads to in :class:`Settings`, and how many parts it used.

    The walk goes through settings sections by field name and through a map by one key; it stops
    at the first annotation that is neither (a list, a scalar, or a map of scalars).
    """
    annotation: Any = Settings
    for used, part in enumerate(parts):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or n: f for n, f in annotation.model_fields.items()} | annotation.model_fields
            if part not in fields:
                return None, used
            annotation = fields[part].annotation
            continue
        annotation = _optional_inner(annotation)
        if get_origin(annotation) is dict and _is_section(get_args(annotation)[1]):
            annotation = get_args(annotation)[1]
            continue
        return annotation, used
    return annotation, len(parts)


def _optional_inner(annotation: Any) -> Any:
    """``X`` of ``X | None`` and of ``Annotated[X, ...]``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _optional_inner(args[0])
    if get_origin(annotation) is Annotated:
        return get_args(annotation)[0]
    return annotation


def _is_section(annotation: Any) -> bool:
    """A value the key path goes into: a settings model or a map of maps."""
    annotation = _optional_inner(annotation)
    return get_origin(annotation) is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def _key_path(parts: list[str]) -> list[str]:
    """Dots after a map of scalars belong to the map's key (Spark options have dots)."""
    annotation, used = _field_type(parts)
    annotation = _optional_inner(annotation)
    if annotation is not None and get_origin(annotation) is dict and used < len(parts) - 1:
        return parts[:used] + [".".join(parts[used:])]
    return parts


def _holds_text(parts: list[str]) -> Literal["required", "optional", ""]:
    """Whether the setting at ``parts`` holds one piece of text: ``"optional"`` when it may also
    be null (``--set sessions.midnight_timezone=null``), ``"required"``, or ``""`` (parse as YAML)."""
    annotation, used = _field_type(parts[:-1])
    annotation = _optional_inner(annotation)
    if used == len(parts) - 1 and get_origin(annotation) is dict:
        key, value = get_args(annotation)
        return "required" if key is str and value is str else ""
    annotation, used = _field_type(parts)
    if used != len(parts) or _optional_inner(annotation) is not str:
        return ""
    return "optional" if type(None) in get_args(annotation) else "required"


def _apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SettingsError(f"--set {'.'.join(parts)}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


# Keys that existed once: their line says what replaced them.
_PHONES = ("phones are parsed with each row's own country's numbering plan (phonenumbers); set "
           "clean.default_country for rows without a country")
REMOVED = {"clean.country_calling_code": _PHONES, "clean.phone_national_lengths": _PHONES,
           "clean.phone_trunk_prefix": _PHONES}


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden" and key in REMOVED:
            lines.append(f"{key}: removed; {REMOVED[key]}")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key; check the spelling against conf/base.yml")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return "invalid settings: " + "; ".join(lines)


def load_settings(
    env: str = "local",
    overrides: list[str] | None = None,
    conf: str | None = None,
) -> Settings:
    """Merge base + env file + overrides and validate them into a :class:`Settings`."""
    if env not in ENVIRONMENTS:
        raise SettingsError(f"--env {env!r}: choose one of {', '.join(ENVIRONMENTS)}")
    folder = conf_dir(conf)
    data = _read_yaml(folder / "base.yml")
    env_file = folder / f"{env}.yml"
    if env_file.is_file():
        data = _deep_merge(data, _read_yaml(env_file))
    data["env"] = env
    for item in overrides or []:
        parts, value = parse_override(item)
        _apply_override(data, parts, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def with_overrides(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with some section values replaced (validated again)."""
    data = settings.model_dump(by_alias=True)
    for section, values in sections.items():
        data[section] = {**data[section], **values}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None
