"""Every table memberlake writes, declared once: name, layer, keys, snapshot column, schema.

Bronze and silver tables follow from the landing contract (:mod:`memberlake.contract`); gold and
operational tables are listed here. ``columns`` is the table's schema as Spark prints it
(``name type, ...``, Spark's ``simpleString`` types). ``keys`` identify a row (within a
snapshot for dated tables); logs (runs, metrics, audit rows) have none. Dated snapshots all use
one column, ``as_of_date``: a re-run of a date replaces its slice. ``tests/e2e/test_tables.py``
checks every table of a pipeline run against its declaration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

from memberlake.contract import BATCH_ID, ENTITIES, FLAGS, INGESTED_AT, RECORD_HASH, SNAPSHOT, SOURCE_FILE, Entity, Tables

Layer = Literal["bronze", "silver", "gold", "ops"]
_SIMPLE = {"string": "string", "timestamp": "timestamp", "date": "date", "int": "int", "money": "decimal(18,2)",
           "bool": "boolean"}
_LINEAGE = f"{SOURCE_FILE} string, {INGESTED_AT} timestamp, {BATCH_ID} string, {RECORD_HASH} string"


@dataclass(frozen=True)
class Table:
    name: str
    layer: Layer
    keys: tuple[str, ...] = ()
    snapshot: str | None = None
    columns: str = ""
    partition_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.split(" ", 1)[0] for c in split_columns(self.columns)]


def split_columns(columns: str) -> list[str]:
    """``"a int, b map<string,bigint>, c decimal(18,2)"`` -> ``["a int", "b map<string,bigint>",
    "c decimal(18,2)"]`` (commas inside ``<>`` and ``()`` stay)."""
    out, depth, cur = [], 0, ""
    for ch in columns:
        depth += ch in "<("
        depth -= ch in ">)"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


def _bronze(entity: Entity) -> Table:
    raw = ", ".join(f"{c} string" for c in entity.column_names)
    return Table(f"bronze_{entity.name}", "bronze", columns=f"{raw}, {_LINEAGE}")


def _silver(entity: Entity) -> Table:
    typed = ", ".join(f"{c.name} {_SIMPLE[c.kind]}" for c in (*entity.columns, *entity.derived))
    return Table(f"silver_{entity.name}", "silver", keys=entity.key,
                 columns=f"{typed}, {FLAGS} array<string>, _version timestamp, {_LINEAGE}")


_DECLARED = [
    Table(Tables.ATTRIBUTION, "gold", keys=('model', 'channel', 'campaign'),
          columns=(
              'model string, channel string, campaign string, conversions double, revenue double')),
    Table(Tables.BASKET_BOUGHT_TOGETHER, "gold", keys=('as_of_date', 'item', 'recommended_item'), snapshot=SNAPSHOT,
          columns=(
              'item string, recommended_item string, support double, confidence double, lift double, '
              'score double, rank int, as_of_date date')),
    Table(Tables.BASKET_ITEMSETS, "gold", keys=('as_of_date', 'segment_by', 'segment', 'items'), snapshot=SNAPSHOT,
          columns=(
              'segment_by string, segment string, items array<string>, size int, freq bigint, support double, '
              'as_of_date date, parameters string')),
    Table(Tables.BASKET_RECOMMENDATIONS, "gold", keys=('as_of_date', 'person_id', 'rank'), snapshot=SNAPSHOT,
          columns=(
              'person_id string, rank int, item string, score double, confidence double, lift double, '
              'because array<string>, as_of_date date')),
    Table(Tables.BASKET_RULES, "gold", keys=('as_of_date', 'segment_by', 'segment', 'antecedent', 'consequent'),
          snapshot=SNAPSHOT,
          columns=(
              'segment_by string, segment string, antecedent array<string>, consequent string, '
              'antecedent_support double, consequent_support double, support double, freq bigint, '
              'confidence double, lift double, leverage double, conviction double, as_of_date date, '
              'parameters string')),
    Table(Tables.CHURN_CALIBRATION, "gold", keys=('as_of_date', 'model_version', 'bin'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model_version string, bin bigint, lower double, upper double, persons double, '
              'mean_predicted double, observed_rate double')),
    Table(Tables.CHURN_METRICS, "gold", keys=(), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model_version string, champion boolean, model string, split string, '
              'metric string, value double')),
    Table(Tables.CHURN_ROC, "gold", keys=(), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model_version string, threshold double, fpr double, tpr double, '
              'precision double')),
    Table(Tables.CHURN_SCORES, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'person_id string, as_of_date date, probability double, decile int, risk_band string, '
              'model_version string')),
    Table(Tables.CLEAN_BATCHES, "ops", keys=('entity', 'batch_id'),
          columns=(
              'entity string, batch_id string, run_id string, cleaned_at timestamp')),
    Table(Tables.CLV, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, person_id string, frequency double, recency double, T double, '
              'monetary_value double, p_alive double, expected_purchases double, expected_value double, '
              'clv double, p_alive_lower double, p_alive_upper double, expected_purchases_lower double, '
              'expected_purchases_upper double, clv_lower double, clv_upper double')),
    Table(Tables.CLV_HOLDOUT, "gold", keys=('as_of_date', 'model', 'calibration_frequency'), snapshot=SNAPSHOT,
          columns=(
              'calibration_end date, as_of_date date, model string, calibration_frequency int, persons bigint, '
              'mean_actual double, mean_predicted double')),
    Table(Tables.CLV_PARAMETERS, "gold", keys=('as_of_date', 'model', 'fit', 'parameter'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model string, parameter string, value double, log_likelihood double, '
              'iterations int, converged boolean, rows bigint, fit string, selected boolean, holdout_mae double, '
              'holdout_total_error double, std_error double, log_covariance array<double>')),
    Table(Tables.ALERTS, "ops", keys=(),
          columns=(
              'run_id string, job string, source string, subject string, severity string, message string, '
              'value double, limit double, raised_at timestamp')),
    Table(Tables.DQ_ALERTS, "ops", keys=(),
          columns=(
              'run_id string, job string, table string, check string, column string, value double, limit double, '
              'passed boolean, severity string, message string, checked_at timestamp')),
    Table(Tables.DQ_METRICS, "ops", keys=(),
          columns=(
              'run_id string, job string, table string, metric string, column string, value double, '
              'measured_at timestamp')),
    Table(Tables.FEATURES, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'person_id string, as_of_date date, recency_days double, tenure_days double, orders double, '
              'order_rate double, orders_365d double, spend_365d double, avg_order_value double, '
              'orders_30d double, order_trend double, spend_trend double, mean_gap_days double, '
              'std_gap_days double, overdue_ratio double, silence_likelihood double, category_breadth double, '
              'discount_share double, share_online double, share_store double, share_app double, '
              'sessions_90d double, engaged_sessions_90d double, days_since_last_session double, '
              'marketing_opt_in double, reviews_365d double, sentiment_mean double, sentiment_trend double, '
              'btyd_p_alive double, btyd_expected_purchases double')),
    Table(Tables.IDENTITY_AUDIT, "gold", keys=(),
          columns=(
              'src_type string, src_value string, dst_type string, dst_value string, origin string, '
              'reason string')),
    Table(Tables.IDENTITY_EDGES, "gold", keys=('src_type', 'src_value', 'dst_type', 'dst_value', 'origin'),
          columns=(
              'src_type string, src_value string, dst_type string, dst_value string, origin string, '
              'observations bigint, sources array<string>')),
    Table(Tables.IDENTITY_GRAPH, "gold", keys=('id_type', 'value'),
          columns=(
              'id_type string, value string, person_id string, component_size bigint')),
    Table(Tables.IDENTITY_LABELS, "ops", keys=('l_record', 'r_record'),
          columns='l_record string, r_record string, match boolean, labelled_by string, labelled_at timestamp'),
    Table(Tables.INGEST_FILES, "ops", keys=('entity', 'path'),
          columns=(
              'entity string, path string, size bigint, modified bigint, format string, batch_id string, '
              'ingested_at timestamp, rows_read bigint, rows_accepted bigint, rows_quarantined bigint')),
    Table(Tables.JOB_RUNS, "ops", keys=(),
          columns=(
              'job string, run_id string, parameters string, started_at timestamp, ended_at timestamp, '
              'duration_s double, status string, rows_read map<string,bigint>, '
              'rows_written map<string,bigint>, versions_read map<string,bigint>, '
              'versions_written map<string,bigint>, error string')),
    Table(Tables.LATE_EVENTS, "gold", keys=('event_id',),
          columns=(
              'event_id string, event_ts timestamp, anonymous_id string, device_id string, member_id string, '
              'event_type string, page_url string, referrer string, utm_source string, utm_medium string, '
              'utm_campaign string, product_id string, order_id string')),
    Table(Tables.MARKOV_REMOVAL_EFFECTS, "gold", keys=('channel',),
          columns=(
              'channel string, removal_effect double, share double')),
    Table(Tables.MARKOV_TRANSITIONS, "gold", keys=('from_state', 'to_state'),
          columns=(
              'from_state string, to_state string, transitions bigint, probability double')),
    Table(Tables.MATCH_PAIRS, "gold", keys=('l_record', 'r_record'),
          columns=(
              'l_record string, r_record string, rule int, rules int, first_name_level int, last_name_level int, '
              'birth_date_level int, street_level int, postcode_level int, city_level int, '
              'address_level int, first_name_tf_key bigint, last_name_tf_key bigint, match_weight double, '
              'match_probability double, vetoed boolean, accepted boolean')),
    Table(Tables.MATCH_PARAMETERS, "ops", keys=('field', 'level'),
          columns=(
              'field string, level int, m double, u double, prior double, iterations int, converged boolean, '
              'run_id string')),
    Table(Tables.MATCH_RECORDS, "gold", keys=('record',),
          columns='record string, first_name string, last_name string, birth_date date, street string, '
                  'postcode string, city string'),
    Table(Tables.MEMBER_PROFILE, "gold", keys=('person_id',),
          columns=(
              'as_of_date date, person_id string, recency_days int, frequency bigint, frequency_window bigint, '
              'monetary double, monetary_window double, first_order_date date, last_order_date date, '
              'tenure_days int, avg_order_value double, mean_interpurchase_days double, r_score int, '
              'f_score int, m_score int, rfm_cell string, segment string, preferred_categories array<string>, '
              'preferred_brands array<string>, discounted_spend_share double, preferred_channel string, '
              'preferred_weekday string, preferred_hour int, lifecycle_stage string, value_tier string, '
              'age_band string, gender string, region string, country string, marketing_opt_in boolean, '
              'sessions_90d bigint, engaged_session_share double, days_since_last_session int, '
              'loyalty_index double, loyalty_tier string, tags array<string>')),
    Table(Tables.LOYALTY, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, person_id string, repeat_component double, value_component double, '
              'engagement_component double, breadth_component double, sentiment_component double, '
              'loyalty_index double, loyalty_tier string')),
    Table(Tables.MODEL_MONITORING, "gold", keys=('as_of_date', 'metric', 'subject'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model string, model_version string, metric string, subject string, '
              'reference string, value double, limit double, alert boolean, measured_at timestamp')),
    Table(Tables.PERSON, "gold", keys=('person_id',),
          columns=(
              'person_id string, first_name string, last_name string, gender string, birth_date date, '
              'email string, phone string, street string, city string, postcode string, state string, '
              'country string, marketing_opt_in boolean, first_registered_at timestamp, '
              'member_records array<string>, sources array<string>')),
    Table(Tables.PERSON_BEHAVIOUR, "gold", keys=('person_id', 'month'),
          columns=(
              'person_id string, month date, sessions bigint, active_days bigint, avg_duration_s double, '
              'pages_per_session double, bounce_rate double, conversion_rate double, revenue double, '
              'preferred_device string, preferred_hour int, preferred_weekday string, '
              'preferred_channel string, most_viewed_categories array<string>')),
    Table(Tables.PERSON_ID_HISTORY, "gold", keys=(),
          columns=(
              'old_id string, new_id string, change string, run_id string, changed_at timestamp')),
    Table(Tables.PERSON_ID_MAP, "gold", keys=('old_id',),
          columns=(
              'old_id string, current_id string')),
    Table(Tables.PERSON_REGISTRY, "gold", keys=('person_id',),
          columns=(
              'person_id string, first_seen timestamp')),
    Table(Tables.QUARANTINE, "bronze", keys=(),
          columns=(
              'entity string, stage string, raw_record string, reasons array<string>, _source_file string, '
              '_ingested_at timestamp, _batch_id string, _record_hash string')),
    Table(Tables.RFM, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, person_id string, recency_days int, frequency bigint, frequency_window bigint, '
              'monetary double, monetary_window double, first_order_date date, last_order_date date, '
              'tenure_days int, avg_order_value double, mean_interpurchase_days double, r_score int, '
              'f_score int, m_score int, rfm_cell string, segment string')),
    Table(Tables.RFM_SEGMENT_MIGRATION, "gold", keys=('as_of_date', 'from_segment', 'to_segment'), snapshot=SNAPSHOT,
          columns=(
              'from_date date, as_of_date date, from_segment string, to_segment string, persons bigint')),
    Table(Tables.SEGMENT_PROFILE, "gold", keys=('as_of_date', 'cluster', 'feature'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, cluster bigint, persons bigint, share double, feature string, mean double, '
              'population_mean double, population_std double, z double, persona string')),
    Table(Tables.SEGMENTS, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'person_id string, as_of_date date, cluster int, persona string')),
    Table(Tables.SESSION_FUNNEL, "gold", keys=('channel', 'campaign', 'step_no'),
          columns=(
              'channel string, campaign string, step_no int, step string, sessions bigint, reached bigint, '
              'drop_off double')),
    Table(Tables.SESSIONS, "gold", keys=('session_id',),
          columns=(
              'session_id string, anonymous_id string, device_id string, member_id string, '
              'visit_start timestamp, session_start timestamp, session_end timestamp, duration_s double, '
              'events bigint, page_views bigint, landing_page string, exit_page string, source string, '
              'medium string, campaign string, referrer string, channel string, converted boolean, '
              'order_ids array<string>, event_types array<string>, path array<string>, bounce boolean, '
              'engaged boolean, orders int, revenue double, person_id string')),
    Table(Tables.SESSIONS_BATCHES, "ops", keys=('_batch_id',),
          columns=(
              '_batch_id string, sessionized_at timestamp')),
    Table(Tables.TAG_COVERAGE, "gold", keys=('as_of_date', 'tag'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, tag string, persons bigint, share double')),
    Table(Tables.TOP_LANDING_PAGES, "gold", keys=('landing_page',),
          columns=(
              'landing_page string, sessions bigint, bounce_rate double, conversion_rate double')),
    Table(Tables.TOP_PATHS, "gold", keys=('path',),
          columns=(
              'path string, sessions bigint, conversion_rate double')),
    Table(Tables.FORGET_REQUESTS, "ops", keys=('request_id',),
          columns=(
              'request_id string, requested_at timestamp, identifiers array<string>, person_ids array<string>, '
              'rows_deleted map<string,bigint>, vacuum_retention_hours double')),
    Table(Tables.REVIEW_SENTIMENT, "gold", keys=('review_id',),
          columns=(
              'review_id string, person_id string, order_id string, product_id string, created_at timestamp, '
              'channel string, rating int, language string, language_detected boolean, sentences int, '
              'opinion_sentences int, lexicon_score double, model_score double, blend_score double, '
              'method string, score double, label string')),
    Table(Tables.REVIEW_ASPECTS, "gold", keys=('review_id', 'aspect'),
          columns=(
              'review_id string, person_id string, product_id string, created_at timestamp, language string, '
              'aspect string, mentions int, score double, label string')),
    Table(Tables.PRODUCT_SENTIMENT, "gold", keys=('product_id', 'month'),
          columns=(
              'product_id string, month date, reviews bigint, mean_score double, positive_share double, '
              'negative_share double, mean_rating double')),
    Table(Tables.ASPECT_SENTIMENT, "gold", keys=('category', 'aspect', 'month'),
          columns=(
              'category string, aspect string, month date, reviews bigint, mean_score double, '
              'negative_share double')),
    Table(Tables.PERSON_SENTIMENT, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, person_id string, reviews bigint, mean_score double, negative_share double, '
              'last_review_at timestamp, last_score double, recent_mean double, previous_mean double, '
              'trend double')),
    Table(Tables.SENTIMENT_METRICS, "gold", keys=('as_of_date', 'language', 'method', 'metric'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, language string, method string, metric string, value double, chosen boolean, '
              'labelled bigint, positives bigint')),
    Table(Tables.FORECAST_SERIES, "gold", keys=('as_of_date', 'measure', 'series_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, grain string, measure string, series_id string, parent string, periods bigint, '
              'demand_periods bigint, adi double, cv2 double, pattern string, seasonal boolean, status string, '
              'reason string, model string, mase double, baseline_mase double, interval_factor_80 double, '
              'interval_factor_95 double')),
    Table(Tables.DEMAND_FORECAST, "gold", keys=('as_of_date', 'measure', 'level', 'series_id', 'period'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, grain string, measure string, level string, series_id string, parent string, '
              'period date, step int, forecast double, lo_80 double, hi_80 double, lo_95 double, hi_95 double, '
              'model string, pattern string, interval string')),
    Table(Tables.DEMAND_HISTORY, "gold", keys=('as_of_date', 'measure', 'level', 'series_id', 'period'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, grain string, measure string, level string, series_id string, parent string, '
              'period date, y double')),
    Table(Tables.FORECAST_BACKTEST, "gold", keys=('as_of_date', 'measure', 'level', 'series_id', 'model'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, grain string, measure string, level string, series_id string, model string, '
              'chosen boolean, windows int, periods bigint, mae double, mase double, wape double, bias double, '
              'coverage_80 double, coverage_95 double')),
    Table(Tables.CUSTOMER_BASE_FORECAST, "gold", keys=('as_of_date', 'kind', 'week'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, kind string, model string, start_date date, week int, week_start date, '
              'persons bigint, expected_purchases double, expected_active double, expected_revenue double, '
              'actual_purchases double, actual_active double, actual_revenue double, '
              'expected_purchases_lower double, expected_purchases_upper double, expected_active_lower double, '
              'expected_active_upper double, expected_revenue_lower double, expected_revenue_upper double')),
    Table(Tables.CAMPAIGN_OUTCOMES, "gold", keys=('campaign_id', 'person_id'),
          columns=(
              'campaign_id string, person_id string, variant string, is_control boolean, contacted_at timestamp, '
              'window_end timestamp, converted int, orders bigint, revenue double, visited int, opened int, '
              'clicked int, pre_converted int, pre_orders bigint, pre_revenue double, pre_visited int')),
    Table(Tables.CAMPAIGN_ASSIGNMENTS, "gold", keys=('campaign_id', 'person_id'),
          columns=(
              'campaign_id string, person_id string, status string, suppressed_by array<string>, variant string, '
              'is_control boolean, stratum string, bucket double, send_at timestamp')),
    Table(Tables.CAMPAIGN_POWER, "gold", keys=('campaign_id', 'variant', 'metric'),
          columns=(
              'campaign_id string, variant string, metric string, contacts bigint, control_contacts bigint, '
              'baseline_mean double, baseline_sd double, alpha double, power double, mde double, '
              'mde_relative double, send_at timestamp')),
    Table(Tables.UPLIFT_METRICS, "gold", keys=('as_of_date', 'model', 'split', 'metric'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model_version string, champion boolean, model string, split string, metric string, '
              'value double')),
    Table(Tables.UPLIFT_DECILES, "gold", keys=('as_of_date', 'model', 'decile'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, model string, decile int, n_treatment bigint, n_control bigint, '
              'response_rate_treatment double, response_rate_control double, uplift double')),
    Table(Tables.UPLIFT_HOLDOUT, "gold", keys=('as_of_date', 'campaign_id', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, campaign_id string, person_id string, treated int, outcome int, uplift double, '
              'churn_risk double')),
    Table(Tables.UPLIFT_SCORES, "gold", keys=('as_of_date', 'person_id'), snapshot=SNAPSHOT,
          columns=(
              'as_of_date date, person_id string, uplift double, decile int, model_version string')),
    Table(Tables.CAMPAIGN_RESULTS, "gold", keys=('campaign_id', 'variant', 'metric'),
          columns=(
              'campaign_id string, variant string, control_variant string, metric string, contacts bigint, '
              'control_contacts bigint, mean double, control_mean double, difference double, ci_low double, '
              'ci_high double, p_value double, significant boolean, relative_lift double, relative_ci_low double, '
              'relative_ci_high double, cuped_difference double, cuped_ci_low double, cuped_ci_high double, '
              'cuped_p_value double, variance_reduction double, incremental_total double, cost double, roi double, '
              'srm_p_value double, srm_flag boolean, first_contact timestamp, window_end timestamp, '
              'window_complete boolean')),
]

TABLES: dict[str, Table] = {t.name: t for t in [*map(_bronze, ENTITIES.values()), *map(_silver, ENTITIES.values()),
                                                *_DECLARED]}


def declared(name: str) -> Table:
    """The declaration of ``name``; an undeclared table is a programming error, named."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"table {name!r} is not declared in memberlake.tables") from None


def conform(df: "DataFrame", name: str) -> "DataFrame":
    """``df``'s columns in ``name``'s declared order, cast to the declared types (a missing one is an error)."""
    from pyspark.sql import functions as F

    pairs = (c.split(" ", 1) for c in split_columns(declared(name).columns))
    return df.select(*[F.col(column).cast(kind).alias(column) for column, kind in pairs])


def cell(value: float | None) -> float | None:
    """A number for a table cell: NaN and infinities (no estimate) become null."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return float(value)
