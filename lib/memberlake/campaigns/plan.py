"""Campaign planning: the audience, who must not be contacted, and a random split with a control.

``memberlake campaign plan --campaign ID`` reads the campaign's plan from config
(``campaigns.plans.ID``) and, for the send date:

1. the **audience**: member_profile rows (one per person) with the latest ``clv`` and
   ``churn_scores`` columns beside them, filtered by the plan's SQL rule;
2. **suppression**, every reason kept: no marketing opt-in (unknown counts as no), a forgotten
   person, contacted (or planned) by another campaign within ``min_days_between_contacts`` of
   the send date, ``frequency_cap`` contacts in the ``frequency_cap_days`` before it, and no
   address for the channel (an e-mail for ``email``, a phone for ``sms``, a member record else);
3. **assignment** by a salted hash of (campaign, person): the same plan gives the same split on
   every run and machine. Without strata a person's variant depends on their hash alone (a
   re-plan with a grown audience keeps everyone's variant); with ``stratify_by`` each stratum is
   split in the exact shares (persons ordered by hash, then dealt by position);
4. a **power report**: per variant against the control, the minimum detectable effect on
   conversion and on revenue per contact, with the audience's own rates in the ``readout_days``
   before the send date as the baseline.

All of it is Spark; only the power report's few sums reach the driver.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.campaigns.readout import contacted
from memberlake.campaigns.stats import minimum_detectable_effect
from memberlake.contract import Tables
from memberlake.exprs import member_node, unit_hash
from memberlake.ops.context import Outputs
from memberlake.settings import CampaignPlan, CampaignSettings
from memberlake.tables import cell, conform, declared

log = logging.getLogger(__name__)

# Columns an audience rule may read beside member_profile's: the latest clv and churn scores.
SCORE_COLUMNS = {"p_alive": "double", "expected_purchases": "double", "expected_value": "double", "clv": "double",
                 "churn_probability": "double", "churn_decile": "int", "risk_band": "string", "uplift": "double",
                 "uplift_decile": "int"}
SUPPRESSIONS = ("no_marketing_opt_in", "forgotten", "recently_contacted", "frequency_cap", "unreachable")
POWER_SCHEMA = ("campaign_id string, variant string, metric string, contacts bigint, control_contacts bigint, "
                "baseline_mean double, baseline_sd double, alpha double, power double, mde double, "
                "mde_relative double, send_at timestamp")


def audience_columns() -> list[str]:
    """What ``campaigns.plans.<id>.audience`` and ``stratify_by`` may name."""
    return [c for c in declared(Tables.MEMBER_PROFILE).column_names if c != "as_of_date"] + list(SCORE_COLUMNS)


def latest(df: DataFrame | None, as_of: date) -> DataFrame | None:
    """The newest snapshot slice of ``df`` on or before ``as_of`` (None when it has none)."""
    if df is None:
        return None
    newest = df.where(F.col("as_of_date") <= F.lit(as_of)).agg(F.max("as_of_date")).first()[0]
    return None if newest is None else df.where(F.col("as_of_date") == F.lit(newest))


def audience(profile: DataFrame, clv: DataFrame | None, churn: DataFrame | None,
             uplift: DataFrame | None = None) -> DataFrame:
    """One row per person: the profile with the score columns (null where not scored)."""
    out = profile.drop("as_of_date")
    if clv is not None:
        out = out.join(clv.select("person_id", "p_alive", "expected_purchases", "expected_value", "clv"),
                       "person_id", "left")
    if churn is not None:
        out = out.join(churn.select("person_id", F.col("probability").alias("churn_probability"),
                                    F.col("decile").alias("churn_decile"), "risk_band"), "person_id", "left")
    if uplift is not None:
        out = out.join(uplift.select("person_id", "uplift", F.col("decile").alias("uplift_decile")), "person_id", "left")
    for name, dtype in SCORE_COLUMNS.items():
        if name not in out.columns:
            out = out.withColumn(name, F.lit(None).cast(dtype))
    return out


def reachable(members: DataFrame | None, graph: DataFrame) -> DataFrame:
    """Per person the contact details of their newest member record: member_id, email, phone.

    A member record is the graph's ``member`` node; the newest is the last updated, then registered."""
    if members is None:
        return graph.sparkSession.createDataFrame([], "person_id string, member_id string, email string, phone string")
    nodes = graph.where(F.col("id_type") == "member").select(F.col("value").alias("_node"), "person_id")
    keyed = members.withColumn("_node", member_node(F.col("source"), F.col("member_id"))).join(nodes, "_node")
    newest = F.struct(F.coalesce("updated_at", "registered_at"), "member_id")
    return keyed.groupBy("person_id").agg(*[F.max_by(c, newest).alias(c) for c in ("member_id", "email", "phone")])


def contact_history(contacts: DataFrame | None, campaigns: DataFrame | None, graph: DataFrame,
                    assignments: DataFrame | None, campaign_id: str) -> DataFrame | None:
    """(person_id, contacted_at) of every other campaign's treated contact, and of every other
    campaign's planned (assigned, not control) person at its send date."""
    parts = []
    if contacts is not None:
        people = contacted(contacts, campaigns, graph)
        parts.append(people.where(~F.coalesce("is_control", F.lit(False)))
                     .select("campaign_id", "person_id", "contacted_at"))
    if assignments is not None:
        parts.append(assignments.where((F.col("status") == "assigned") & ~F.col("is_control"))
                     .select("campaign_id", "person_id", F.col("send_at").alias("contacted_at")))
    if not parts:
        return None
    both = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    return (both.where(F.col("campaign_id") != campaign_id)
            .groupBy("campaign_id", "person_id").agg(F.min("contacted_at").alias("contacted_at")))


def forgotten(requests: DataFrame | None, id_map: DataFrame | None) -> DataFrame | None:
    """Person ids named by a forget request, and what they were merged into since."""
    if requests is None:
        return None
    ids = requests.select(F.explode("person_ids").alias("person_id")).distinct()
    if id_map is not None:
        ids = ids.unionByName(ids.join(id_map.withColumnRenamed("old_id", "person_id"), "person_id")
                              .select(F.col("current_id").alias("person_id")))
    return ids.distinct().withColumn("_forgotten", F.lit(True))


def _needs(channel: str) -> Column:
    if channel == "email":
        return F.col("email").isNotNull()
    if channel == "sms":
        return F.col("phone").isNotNull()
    return F.col("member_id").isNotNull()


def suppress(people: DataFrame, contacts: DataFrame, history: DataFrame | None, gone: DataFrame | None,
             plan: CampaignPlan, cfg: CampaignSettings, send_at: datetime) -> DataFrame:
    """``people`` with ``suppressed_by``: every reason the person must not be contacted (empty
    array when none)."""
    out = people.join(contacts, "person_id", "left")
    if gone is not None:
        out = out.join(gone, "person_id", "left")
    else:
        out = out.withColumn("_forgotten", F.lit(None).cast("boolean"))
    send = F.lit(send_at)
    if history is not None:
        gap = F.abs(F.unix_timestamp("contacted_at") - F.unix_timestamp(send)) / 86400.0
        cap_start = send - F.expr(f"INTERVAL {cfg.frequency_cap_days} DAYS")
        seen = history.groupBy("person_id").agg(
            F.max((gap < cfg.min_days_between_contacts).cast("int")).alias("_recent"),
            F.sum(((F.col("contacted_at") >= cap_start) & (F.col("contacted_at") < send)).cast("int")).alias("_count"))
        out = out.join(seen, "person_id", "left")
    else:
        out = out.withColumn("_recent", F.lit(0)).withColumn("_count", F.lit(0))
    reasons = [
        ("no_marketing_opt_in", ~F.coalesce(F.col("marketing_opt_in"), F.lit(False))),
        ("forgotten", F.coalesce(F.col("_forgotten"), F.lit(False))),
        ("recently_contacted", F.coalesce(F.col("_recent"), F.lit(0)) == 1),
        ("frequency_cap", F.lit(cfg.frequency_cap > 0) & (F.coalesce(F.col("_count"), F.lit(0)) >= cfg.frequency_cap)),
        ("unreachable", ~_needs(plan.channel)),
    ]
    flagged = F.filter(F.array(*[F.when(cond, F.lit(name)) for name, cond in reasons]), lambda r: r.isNotNull())
    return out.withColumn("suppressed_by", flagged).drop("_forgotten", "_recent", "_count")


def _dealt(position: Column, variants: dict[str, float]) -> Column:
    """The variant whose cumulative share interval holds ``position`` (variants in name order)."""
    out, edge = None, 0.0
    names = sorted(variants)
    for name in names[:-1]:
        edge += variants[name]
        out = (F.when(position < edge, F.lit(name)) if out is None else out.when(position < edge, F.lit(name)))
    return out.otherwise(F.lit(names[-1])) if out is not None else F.lit(names[-1])


def assign(eligible: DataFrame, campaign_id: str, plan: CampaignPlan) -> DataFrame:
    """``eligible`` with ``bucket`` (the person's hash), ``stratum`` and ``variant``."""
    salt = plan.salt or campaign_id
    if plan.target_top is not None:      # the persons the campaign is expected to move most, then split
        eligible = eligible.orderBy(F.expr(plan.rank_by).desc_nulls_last(), "person_id").limit(plan.target_top)
    hashed = eligible.withColumn("bucket", unit_hash(F.lit(salt), F.lit(campaign_id), "person_id"))
    if plan.max_contacts is not None:       # a random sample: a second hash, independent of the split
        hashed = (hashed.withColumn("_sample", unit_hash(F.lit(salt), F.lit("sample"), F.lit(campaign_id), "person_id"))
                  .orderBy("_sample", "person_id").limit(plan.max_contacts).drop("_sample"))
    if plan.stratify_by is None:
        return hashed.withColumn("stratum", F.lit(None).cast("string")).withColumn(
            "variant", _dealt(F.col("bucket"), plan.variants))
    stratum = F.coalesce(F.col(plan.stratify_by).cast("string"), F.lit("(none)"))
    by = Window.partitionBy("stratum").orderBy("bucket", "person_id")
    dealt = (hashed.withColumn("stratum", stratum)
             .withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("stratum")))
             .withColumn("_pos", (F.row_number().over(by) - 0.5) / F.col("_n")))
    return dealt.withColumn("variant", _dealt(F.col("_pos"), plan.variants)).drop("_n", "_pos")


def baseline(persons: DataFrame, purchases: DataFrame, send_at: datetime, days: int) -> DataFrame:
    """Per person: converted (0/1) and revenue in the ``days`` before the send date."""
    start = send_at - timedelta(days=days)
    window = purchases.where((F.col("order_ts") >= F.lit(start)) & (F.col("order_ts") < F.lit(send_at)))
    spent = window.groupBy("person_id").agg(F.sum("net").alias("revenue"))
    return (persons.select("person_id", "variant").join(spent, "person_id", "left")
            .select("person_id", "variant", F.col("revenue").isNotNull().cast("double").alias("converted"),
                    F.coalesce("revenue", F.lit(0.0)).alias("revenue")))


def power_rows(sums: list, campaign_id: str, plan: CampaignPlan, cfg: CampaignSettings, send_at: datetime
               ) -> list[tuple]:
    """``campaign_power`` rows from per-variant sums (n, Σy, Σy² of converted and revenue)."""
    alpha = 1 - cfg.confidence
    by = {r["variant"]: r for r in sums}
    total = {k: sum(float(r[k] or 0) for r in sums) for k in ("n", "converted", "converted2", "revenue", "revenue2")}
    rows = []
    control_n = int(by[plan.control]["n"]) if plan.control in by else 0
    for variant in sorted(v for v in plan.variants if v != plan.control):
        n = int(by[variant]["n"]) if variant in by else 0
        for metric in ("converted", "revenue"):
            mean = total[metric] / total["n"] if total["n"] else math.nan
            var = ((total[f"{metric}2"] - total[metric] ** 2 / total["n"]) / (total["n"] - 1)
                   if total["n"] > 1 else math.nan)
            sd = math.sqrt(max(var, 0.0)) if not math.isnan(var) else math.nan
            mde = minimum_detectable_effect(sd, n, control_n, alpha, cfg.power)
            rel = mde / mean if mean and not math.isnan(mde) and not math.isnan(mean) else None
            rows.append((campaign_id, variant, metric, n, control_n, cell(mean), cell(sd), alpha, cfg.power,
                         cell(mde), cell(rel), send_at))
    return rows


@dataclass
class CampaignPlanOutputs(Outputs):
    send_list: DataFrame | None = None
    power: list[tuple] | None = None


def campaign_filter(campaign_id: str) -> str:
    """The replaceWhere predicate of one campaign's rows."""
    return "campaign_id = '" + campaign_id.replace("\\", "\\\\").replace("'", "\\'") + "'"


def plan_campaign(campaign_id: str, plan: CampaignPlan, cfg: CampaignSettings, send_at: datetime, people: DataFrame,
                  contacts: DataFrame, history: DataFrame | None, gone: DataFrame | None, purchases: DataFrame,
                  stage) -> CampaignPlanOutputs:
    """``campaign_assignments`` and ``campaign_power`` for one campaign, and its send list (in
    the contract's ``campaign_contacts`` shape, control rows flagged ``is_control``)."""
    chosen = people.where(F.expr(plan.audience))
    flagged = suppress(chosen, contacts, history, gone, plan, cfg, send_at).localCheckpoint()
    eligible = flagged.where(F.size("suppressed_by") == 0)
    dealt = assign(eligible, campaign_id, plan).localCheckpoint()
    assigned = dealt.select("person_id", "variant", "stratum", "bucket", F.lit("assigned").alias("status"))
    rows = (flagged.select("person_id", "suppressed_by").join(assigned, "person_id", "left")
            .select(F.lit(campaign_id).alias("campaign_id"), "person_id",
                    F.coalesce("status", F.when(F.size("suppressed_by") > 0, "suppressed").otherwise("not_selected"))
                    .alias("status"), "suppressed_by", "variant",
                    F.when(F.col("variant").isNotNull(), F.col("variant") == plan.control).alias("is_control"),
                    "stratum", "bucket", F.lit(send_at).alias("send_at")))
    sums = (baseline(dealt, purchases, send_at, cfg.readout_days).groupBy("variant")
            .agg(F.count(F.lit(1)).alias("n"), F.sum("converted").alias("converted"),
                 F.sum(F.col("converted") ** 2).alias("converted2"), F.sum("revenue").alias("revenue"),
                 F.sum(F.col("revenue") ** 2).alias("revenue2")).collect())   # one row per variant
    power = power_rows(sums, campaign_id, plan, cfg, send_at)
    send_list = dealt.select(
        F.lit(campaign_id).alias("campaign_id"), "member_id", "email", "phone", "variant",
        (F.col("variant") == plan.control).alias("is_control"), F.lit(send_at).alias("assigned_at"),
        *[F.lit(None).cast("timestamp").alias(c) for c in ("sent_at", "delivered_at", "opened_at", "clicked_at")])
    counts = {r["variant"]: int(r["n"]) for r in sums}
    held = {r["reason"]: int(r["n"]) for r in flagged.select(F.explode("suppressed_by").alias("reason"))
            .groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}   # one row per reason
    stage("campaign %s: audience %d, suppressed %s; assigned %s for %s", campaign_id, flagged.count(),
          ", ".join(f"{k} {v}" for k, v in sorted(held.items())) or "none",
          ", ".join(f"{v} {n}" for v, n in sorted(counts.items())) or "nobody", send_at.date())
    counts = {**counts, **{f"suppressed_{k}": v for k, v in held.items()}}
    spark = people.sparkSession
    return CampaignPlanOutputs(
        replaced={Tables.CAMPAIGN_ASSIGNMENTS: (conform(rows, Tables.CAMPAIGN_ASSIGNMENTS), campaign_filter(campaign_id)),
                  Tables.CAMPAIGN_POWER: (conform(spark.createDataFrame(power, POWER_SCHEMA), Tables.CAMPAIGN_POWER),
                                     campaign_filter(campaign_id))},
        counts=counts, send_list=send_list, power=power)
