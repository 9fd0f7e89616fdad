"""Generated campaigns with randomised control groups and a planted heterogeneous effect.

Each campaign contacts a random half of the persons active at its send date; a salted draw puts
each contact in the control group (the campaign's control share) or one of its variants. The
effect, planted only in treated contacts' orders within ``EFFECT_DAYS`` of the send:

- ``lapsing``: at least ``LAPSING_MIN_ORDERS`` completed orders before the send, the last one
  ``LAPSING_DAYS`` ago (60 to 240 days: a buyer going quiet, as a CRM team would define it from
  what it can see): one extra completed order with probability 0.25;
- ``regular``: one extra order with probability 0.06;
- ``loyal`` (heavy buyers, not lapsing): none;
- ``do_not_disturb`` (10% of persons, at random: nothing before the send reveals them): 60% of
  their orders in the window are dropped (they stay away), a negative effect.

The segments that respond are defined on the order history before the send, so a model on
point-in-time features can find them; only the do-not-disturb group is unobservable noise.

The truth (``_truth/campaigns``) has every contact's segment and the orders added and removed,
so the realised average effect on orders per treated contact is known exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.generate.random import constants

DAY = 86400
EFFECT_DAYS = 14
SEGMENT_LIFT = {"lapsing": 0.25, "regular": 0.06, "loyal": 0.0, "do_not_disturb": 0.0}
DND_SHARE, DND_DROP = 0.10, 0.6
LAPSING_MIN_ORDERS = 2
LAPSING_DAYS = (60, 240)


@dataclass(frozen=True)
class PlannedCampaign:
    campaign_id: str
    name: str
    channel: str
    days_before_cutoff: int
    variants: tuple[str, ...]
    control_share: float
    cost_per_contact: float


CAMPAIGNS = (
    PlannedCampaign("CMP001", "Win-back offer", "email", 150, ("offer",), 0.5, 0.05),
    PlannedCampaign("CMP002", "New season", "email", 95, ("mens", "womens"), 1 / 3, 0.05),
    PlannedCampaign("CMP003", "Reminder", "sms", 45, ("reminder",), 0.2, 0.02),
)


def _send_epoch(gen, c: PlannedCampaign) -> int:
    return gen.cfg.epoch(gen.cfg.cutoff) - c.days_before_cutoff * DAY + 10 * 3600


def with_segments(gen, facts: DataFrame, typed: DataFrame) -> DataFrame:
    """``typed`` plus each contact's planted response ``segment``, from the completed orders before
    its send (count and days since the last) and two latent draws (do-not-disturb, heavy buyer)."""
    p = F.col("pidx")
    before = F.col("order_epoch") < F.col("send_epoch")
    history = (typed.select("campaign_id", "pidx", "send_epoch")
               .join(facts.where(F.col("status") == "completed").select("pidx", "order_epoch"), "pidx")
               .groupBy("campaign_id", "pidx")
               .agg(F.count(F.when(before, 1)).alias("_orders_before"),
                    F.max(F.when(before, F.col("order_epoch"))).alias("_last_before")))
    days = (F.col("send_epoch") - F.col("_last_before")) / DAY
    lapsing = ((F.coalesce(F.col("_orders_before"), F.lit(0)) >= LAPSING_MIN_ORDERS)
               & (days >= LAPSING_DAYS[0]) & (days < LAPSING_DAYS[1]))
    segment = (F.when(gen.r.below(DND_SHARE, "dnd", p), F.lit("do_not_disturb"))
               .when(lapsing, F.lit("lapsing"))
               .when(gen.activity(p) > 2.0, F.lit("loyal"))
               .otherwise(F.lit("regular")))
    return (typed.join(history, ["campaign_id", "pidx"], "left")
            .withColumn("segment", segment).drop("_orders_before", "_last_before"))


def contacts(gen, persons: DataFrame) -> DataFrame:
    """Typed contacts: (campaign, person, arm, send time) for every campaign."""
    p = F.col("pidx")
    parts = []
    for c in CAMPAIGNS:
        send = _send_epoch(gen, c)
        reachable = (gen.signup_epoch(p) < F.lit(send)) & (gen.active_end_epoch(p) > F.lit(send - 60 * DAY))
        chosen = persons.where(reachable & gen.r.below(0.5, f"contact_{c.campaign_id}", p))
        control = gen.r.below(c.control_share, f"arm_{c.campaign_id}", p)
        variant = F.element_at(constants(c.variants),
                               (gen.r.int_below(len(c.variants), f"variant_{c.campaign_id}", p) + 1).cast("int"))
        parts.append(chosen.select(
            "pidx", "person_id", "email", F.lit(c.campaign_id).alias("campaign_id"), control.alias("is_control"),
            F.when(control, F.lit("control")).otherwise(variant).alias("variant"),
            (F.lit(send) + gen.r.int_below(7200, f"send_{c.campaign_id}", p)).cast("long").alias("send_epoch")))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def with_effects(gen, facts: DataFrame, typed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(facts with the planted orders added and removed, the per-contact truth with its segment)."""
    r = gen.r
    typed = with_segments(gen, facts, typed)
    treated = typed.where(~F.col("is_control"))
    lift = F.lit(False)
    for seg, prob in SEGMENT_LIFT.items():
        if prob > 0:
            lift = lift | ((F.col("segment") == seg) & r.below(prob, "lift", F.col("pidx"), F.col("campaign_id")))
    added = treated.where(lift).select(
        "pidx", "person_id", F.lit(0).alias("j"), "email", F.lit(None).cast("string").alias("phone"),
        F.concat(F.lit("X"), F.col("campaign_id"), F.format_string("%08d", F.col("pidx"))).alias("order_id"),
        (F.col("send_epoch") + 3600 + r.u("lift_ts", F.col("pidx"), F.col("campaign_id")) * (EFFECT_DAYS * DAY - 7200))
        .cast("long").alias("order_epoch"),
        F.lit("online").alias("channel"), F.lit("completed").alias("status"), F.lit(False).alias("guest"),
        gen.member_id(F.col("pidx"), F.lit(0)).alias("member_id"), "campaign_id")
    window = ((F.col("order_epoch") >= F.col("send_epoch")) & (F.col("order_epoch") < F.col("send_epoch") + EFFECT_DAYS * DAY))
    dropped = (facts.join(treated.where(F.col("segment") == "do_not_disturb").select("pidx", "campaign_id", "send_epoch"),
                          "pidx")
               .where(window & r.below(DND_DROP, "dnd_drop", F.col("order_id")))
               .select("order_id", "campaign_id", "pidx"))
    kept = facts.join(dropped.select("order_id").distinct(), "order_id", "left_anti")
    adjusted = kept.unionByName(added.drop("campaign_id").select(*facts.columns))
    per_contact = (typed
                   .join(added.groupBy("campaign_id", "pidx").agg(F.count(F.lit(1)).alias("orders_added")),
                         ["campaign_id", "pidx"], "left")
                   .join(dropped.groupBy("campaign_id", "pidx").agg(F.count(F.lit(1)).alias("orders_removed")),
                         ["campaign_id", "pidx"], "left")
                   .select("campaign_id", "person_id", "variant", "is_control", "segment",
                           F.coalesce("orders_added", F.lit(0)).alias("orders_added"),
                           F.coalesce("orders_removed", F.lit(0)).alias("orders_removed")))
    return adjusted, per_contact


def contacts_landing(gen, typed: DataFrame) -> DataFrame:
    """The contacts file: member id (or the e-mail only, 25%), variant, control flag (sometimes
    blank, the variant naming the control), assignment = planned send for both arms, sent /
    opened / clicked times for the treated."""
    r, p, cid = gen.r, F.col("pidx"), F.col("campaign_id")
    by_email = r.below(0.25, "contact_email", p, cid)
    sent = F.col("send_epoch")
    opened = ~F.col("is_control") & r.below(0.25, "opened", p, cid)
    clicked = opened & r.below(0.2, "clicked", p, cid)
    flag = F.when(r.below(0.1, "flag_blank", p, cid), F.lit(None)).otherwise(
        F.when(F.col("is_control"), F.lit("true")).otherwise(F.lit("false")))
    return typed.select(
        "campaign_id",
        F.when(~by_email, gen.member_id(p, F.lit(0))).alias("member_id"),
        F.when(by_email, F.col("email")).alias("email"),
        F.lit(None).cast("string").alias("phone"),
        "variant", flag.alias("is_control"),
        gen._iso(sent, "naive").alias("assigned_at"),
        F.when(~F.col("is_control"), gen._iso(sent + 60, "naive")).alias("sent_at"),
        F.when(~F.col("is_control"), gen._iso(sent + 120, "naive")).alias("delivered_at"),
        F.when(opened, gen._iso(sent + 3600, "naive")).alias("opened_at"),
        F.when(clicked, gen._iso(sent + 3700, "naive")).alias("clicked_at"),
    )


def campaigns_landing(gen) -> DataFrame:
    rows = []
    for c in CAMPAIGNS:
        send = _send_epoch(gen, c)
        rows.append((c.campaign_id, c.name, c.channel, "conversion", send, send + EFFECT_DAYS * DAY,
                     f"{c.cost_per_contact:.2f}", "USD"))
    frame = gen.spark.createDataFrame(rows, "campaign_id string, name string, channel string, objective string, "
                                            "start long, end long, cost_per_contact string, currency string")
    return frame.select("campaign_id", "name", "channel", "objective", gen._iso(F.col("start"), "naive").alias("start_at"),
                        gen._iso(F.col("end"), "naive").alias("end_at"), "cost_per_contact", "currency")
