"""Campaign readout: what each variant caused, against the campaign's control group.

Contacts resolve to persons through the identity graph (as orders do). Each (campaign, person)
keeps its first contact; its outcomes are counted in the ``readout_days`` after that contact's
send time and, for CUPED, in as many days just before it. Spark reduces the outcomes to sums per
arm; :mod:`memberlake.campaigns.stats` turns them into differences, intervals and p-values on
the driver (a few rows per campaign).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.campaigns.stats import Arm, cuped, cuped_theta, srm, welch
from memberlake.contract import Tables
from memberlake.inputs import ORDER_KEYS, attach_person
from memberlake.ops.context import Outputs
from memberlake.settings import CampaignSettings
from memberlake.tables import cell, conform

log = logging.getLogger(__name__)

# Outcome metrics: (name, has a pre-period). opened / clicked are read only where the contacts
# carry those times.
METRICS = (("converted", True), ("orders", True), ("revenue", True), ("visited", True), ("opened", False),
           ("clicked", False))


def contacted(contacts: DataFrame, campaigns: DataFrame | None, graph: DataFrame) -> DataFrame:
    """One row per (campaign, person): the person's first contact of the campaign, its variant,
    control flag and send time (sent_at, else assigned_at, else the campaign's start); whether
    the campaign's contacts carry opened / clicked times at all."""
    keyed = contacts.withColumn("_contact", F.sha2(F.to_json(F.struct(*contacts.columns)), 256))
    located = attach_person(keyed, graph, "_contact", ORDER_KEYS).where(F.col("person_id").isNotNull())
    start = F.col("sent_at")
    if campaigns is not None:
        located = located.join(campaigns.select("campaign_id", F.col("start_at").alias("_start")), "campaign_id", "left")
        start = F.coalesce("sent_at", "assigned_at", "_start")
    else:
        start = F.coalesce("sent_at", "assigned_at")
    at = located.withColumn("contacted_at", start).where(F.col("contacted_at").isNotNull())
    first = F.struct("contacted_at", "_contact")
    return at.groupBy("campaign_id", "person_id").agg(
        F.min_by("variant", first).alias("variant"),
        F.min_by("is_control", first).alias("is_control"),
        F.min("contacted_at").alias("contacted_at"),
        F.max(F.col("opened_at").isNotNull().cast("int")).alias("opened"),
        F.max(F.col("clicked_at").isNotNull().cast("int")).alias("clicked"),
    )


def _in(ts: Column, start: Column, end: Column) -> Column:
    return (ts >= start) & (ts < end)


def outcomes(people: DataFrame, purchases: DataFrame, sessions: DataFrame | None, days: int) -> DataFrame:
    """Per (campaign, person) the outcomes in ``[contacted_at, + days)`` and the same metrics in
    ``[contacted_at - days, contacted_at)`` (``pre_*``): converted (any completed order), orders,
    revenue (net), visited (any session)."""
    span = F.expr(f"INTERVAL {int(days)} DAYS")
    base = people.withColumn("window_end", F.col("contacted_at") + span).withColumn(
        "_pre_start", F.col("contacted_at") - span)
    keys = ["campaign_id", "person_id"]
    bought = (base.select(*keys, "contacted_at", "window_end", "_pre_start")
              .join(purchases.select("person_id", "order_ts", "net"), "person_id")
              .where(_in(F.col("order_ts"), F.col("_pre_start"), F.col("window_end"))))
    after = _in(F.col("order_ts"), F.col("contacted_at"), F.col("window_end"))
    before = F.col("order_ts") < F.col("contacted_at")
    orders = bought.groupBy(*keys).agg(
        F.sum(after.cast("int")).alias("orders"), F.sum(F.when(after, F.col("net")).otherwise(0.0)).alias("revenue"),
        F.sum(before.cast("int")).alias("pre_orders"),
        F.sum(F.when(before, F.col("net")).otherwise(0.0)).alias("pre_revenue"))
    out = base.join(orders, keys, "left")
    if sessions is not None:
        visits = (base.select(*keys, "contacted_at", "window_end", "_pre_start")
                  .join(sessions.where(F.col("person_id").isNotNull()).select("person_id", "session_start"), "person_id")
                  .where(_in(F.col("session_start"), F.col("_pre_start"), F.col("window_end")))
                  .groupBy(*keys).agg(
                      F.max((F.col("session_start") >= F.col("contacted_at")).cast("int")).alias("visited"),
                      F.max((F.col("session_start") < F.col("contacted_at")).cast("int")).alias("pre_visited")))
        out = out.join(visits, keys, "left")
    else:
        out = out.select("*", F.lit(None).cast("int").alias("visited"), F.lit(None).cast("int").alias("pre_visited"))
    counted = {c: F.coalesce(F.col(c), F.lit(0)) for c in ("orders", "pre_orders")}
    money = {c: F.coalesce(F.col(c), F.lit(0.0)) for c in ("revenue", "pre_revenue")}
    seen = {c: F.coalesce(F.col(c), F.lit(0)) if sessions is not None else F.col(c) for c in ("visited", "pre_visited")}
    return out.select(
        "campaign_id", "person_id", "variant", "is_control", "contacted_at", "window_end",
        (counted["orders"] > 0).cast("int").alias("converted"), counted["orders"].alias("orders"),
        money["revenue"].alias("revenue"), seen["visited"].alias("visited"), "opened", "clicked",
        (counted["pre_orders"] > 0).cast("int").alias("pre_converted"), counted["pre_orders"].alias("pre_orders"),
        money["pre_revenue"].alias("pre_revenue"), seen["pre_visited"].alias("pre_visited"))


def arm_sums(per_person: DataFrame) -> DataFrame:
    """Sufficient statistics per (campaign, variant, is_control, metric): n, sums of y, y², x, x², xy."""
    parts = []
    for metric, pre in METRICS:
        y = F.col(metric).cast("double")
        x = F.col(f"pre_{metric}").cast("double") if pre else F.lit(0.0)
        parts += [F.count(y).alias(f"{metric}__n"), F.sum(y).alias(f"{metric}__sy"), F.sum(y * y).alias(f"{metric}__syy"),
                  F.sum(x).alias(f"{metric}__sx"), F.sum(x * x).alias(f"{metric}__sxx"),
                  F.sum(x * y).alias(f"{metric}__sxy")]
    return per_person.groupBy("campaign_id", "variant", "is_control").agg(
        *parts, F.min("contacted_at").alias("first_contact"), F.max("window_end").alias("window_end"))


RESULTS_SCHEMA = (
    "campaign_id string, variant string, control_variant string, metric string, contacts bigint, "
    "control_contacts bigint, mean double, control_mean double, difference double, ci_low double, ci_high double, "
    "p_value double, significant boolean, relative_lift double, relative_ci_low double, relative_ci_high double, "
    "cuped_difference double, cuped_ci_low double, cuped_ci_high double, cuped_p_value double, "
    "variance_reduction double, incremental_total double, cost double, roi double, srm_p_value double, "
    "srm_flag boolean, first_contact timestamp, window_end timestamp, window_complete boolean")


@dataclass
class CampaignReadout(Outputs):
    campaigns_read: int = 0


def _arm(rows: list, metric: str) -> Arm:
    """The pooled sums of ``metric`` over collected arm rows."""
    return Arm(sum(int(r[f"{metric}__n"] or 0) for r in rows),
               *[sum(float(r[f"{metric}__{k}"] or 0.0) for r in rows) for k in ("sy", "syy", "sx", "sxx", "sxy")])


def result_rows(sums: list, costs: dict[str, float | None], cfg: CampaignSettings, data_end: datetime | None
                ) -> list[tuple]:
    """``campaign_results`` rows from the collected arm sums (one row per campaign x variant x
    metric for every treated variant, against the campaign's control)."""
    by_campaign: dict[str, list] = {}
    for r in sums:
        by_campaign.setdefault(r["campaign_id"], []).append(r)
    rows = []
    for campaign, arms in sorted(by_campaign.items()):
        controls = [a for a in arms if a["is_control"]]
        if not controls:
            log.warning("campaign %s: no control contacts: no readout", campaign)
            continue
        if len(controls) > 1:
            log.warning("campaign %s: control contacts under %d variant names: pooled as %r", campaign, len(controls),
                        controls[0]["variant"])
        planned = cfg.planned_split.get(campaign) or (cfg.plans[campaign].variants if campaign in cfg.plans else None)
        counts: dict[str, int] = {}
        for a in arms:
            name = "__control__" if a["is_control"] else a["variant"]
            counts[name] = counts.get(name, 0) + int(a["converted__n"])
        srm_p = None     # no planned split, no test: equal shares would flag every small holdout
        if planned:
            shares = {("__control__" if v in {c["variant"] for c in controls} else v): s for v, s in planned.items()}
            _, srm_p = srm(counts, shares)
        window_end = max(a["window_end"] for a in arms)
        complete = data_end is not None and window_end <= data_end
        for metric, _ in METRICS:
            control = _arm(controls, metric)
            treated_arms = [a for a in arms if not a["is_control"]]
            theta = cuped_theta([control, *[_arm([a], metric) for a in treated_arms]]) if cfg.cuped else 0.0
            if metric in ("opened", "clicked") and all(float(a[f"{metric}__sy"] or 0) == 0 for a in arms):
                continue       # the contacts carry no such times
            for a in treated_arms:
                treated = _arm([a], metric)
                if treated.n == 0 or control.n == 0:
                    continue
                test = welch(treated, control, cfg.confidence)
                adj, reduction = cuped(treated, control, theta, cfg.confidence) if cfg.cuped else (None, None)
                cost_each = costs.get(campaign)
                cost = cost_each * treated.n if cost_each is not None else None
                incremental = test.difference * treated.n
                roi = (incremental - cost) / cost if metric == "revenue" and cost else None
                rows.append((
                    campaign, a["variant"], controls[0]["variant"], metric, treated.n, control.n, cell(treated.mean),
                    cell(control.mean), cell(test.difference), cell(test.ci_low), cell(test.ci_high), cell(test.p_value),
                    None if cell(test.p_value) is None else test.p_value < 1 - cfg.confidence,
                    cell(test.relative_lift), cell(test.relative_ci_low), cell(test.relative_ci_high),
                    cell(adj.difference) if adj else None, cell(adj.ci_low) if adj else None,
                    cell(adj.ci_high) if adj else None, cell(adj.p_value) if adj else None, cell(reduction),
                    cell(incremental), cell(cost), cell(roi), cell(srm_p),
                    None if cell(srm_p) is None else srm_p < cfg.srm_p_value,
                    a["first_contact"], a["window_end"], complete))
    return rows


def readout(contacts: DataFrame, campaigns: DataFrame | None, graph: DataFrame, purchases: DataFrame,
            sessions: DataFrame | None, cfg: CampaignSettings, stage: Callable[..., None]) -> CampaignReadout:
    """``campaign_outcomes`` (per campaign and person) and ``campaign_results`` (per campaign,
    variant and metric against the control)."""
    people = contacted(contacts, campaigns, graph)
    per_person = outcomes(people, purchases, sessions, cfg.readout_days).localCheckpoint()
    sums = arm_sums(per_person).collect()   # one row per campaign x variant
    costs = ({r["campaign_id"]: (float(r["cost_per_contact"]) if r["cost_per_contact"] is not None else None)
              for r in campaigns.select("campaign_id", "cost_per_contact").collect()}   # one row per campaign
             if campaigns is not None else {})
    ends = [purchases.agg(F.max("order_ts")).first()[0]]
    if sessions is not None:
        ends.append(sessions.agg(F.max("session_start")).first()[0])
    data_end = max((e for e in ends if e is not None), default=None)
    rows = result_rows(sums, costs, cfg, data_end)
    spark = contacts.sparkSession
    results = spark.createDataFrame(rows, RESULTS_SCHEMA)
    n_campaigns = len({r["campaign_id"] for r in sums})
    stage("campaigns: %d with contacts, %d arms, %d result rows (data through %s)", n_campaigns, len(sums), len(rows),
          data_end)
    return CampaignReadout(whole={Tables.CAMPAIGN_OUTCOMES: conform(per_person, Tables.CAMPAIGN_OUTCOMES),
                                  Tables.CAMPAIGN_RESULTS: conform(results, Tables.CAMPAIGN_RESULTS)},
                           campaigns_read=n_campaigns)

