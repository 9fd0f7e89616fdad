"""The generator: deterministic for a seed, truth consistent with the data, sessions well planted."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from memberlake.generate.synth import GenConfig, Generator

CFG = GenConfig(scale=0.0005, seed=11, start=date(2023, 1, 1), cutoff=date(2024, 9, 30), end=date(2024, 12, 31))
SESSION_GAP_S = 30 * 60


@pytest.fixture(scope="module")
def generated(spark):
    gen = Generator(spark, CFG)
    persons = gen.person_frame().cache()
    members, member_truth = gen.members(persons)
    facts = gen.order_facts(persons).cache()
    items = gen.items(facts).cache()
    events = gen.events(gen.sessions(facts)).cache()
    return gen, persons, members, member_truth, facts, items, events


@pytest.mark.extended
def test_same_seed_same_data(spark, generated):
    gen, persons, members, *_ = generated
    again, _ = Generator(spark, CFG).members(Generator(spark, CFG).person_frame())
    assert members.exceptAll(again).count() == 0 and again.exceptAll(members).count() == 0
    other, _ = Generator(spark, replace(CFG, seed=12)).members(gen.person_frame())
    assert other.exceptAll(members).count() > 0


def test_sizes_follow_scale(generated):
    _, persons, members, _, facts, _, events = generated
    assert persons.count() == CFG.n_persons
    assert 0.8 * CFG.n_records < members.count() < 1.2 * CFG.n_records
    assert 0.7 * CFG.n_orders < facts.count() < 1.3 * CFG.n_orders
    assert 0.6 * CFG.n_events < events.count() < 1.4 * CFG.n_events


def test_member_truth_covers_every_member_record(generated):
    _, _, members, truth, *_ = generated
    ids = members.where("member_id IS NOT NULL").select("source", "member_id").distinct()
    assert ids.join(truth, ["source", "member_id"], "left_anti").count() == 0
    assert truth.select("member_id").distinct().count() == truth.count()      # one person per record
    dup_persons = truth.groupBy("person_id").count().where("count > 1").count()
    assert dup_persons > 0                                                   # planted duplicates exist
    assert truth.where("junk_email OR junk_phone").count() > 0               # and junk traps


def test_planted_sessions_respect_the_30_minute_rule(generated):
    *_, events = generated
    ts = events.select("anonymous_id", "session_key", F.unix_timestamp(F.col("event_ts").try_cast("timestamp")).alias("t")) \
        .where("t IS NOT NULL")
    by_visitor = Window.partitionBy("anonymous_id").orderBy("t", "session_key")
    gaps = ts.select("*", F.lag("t").over(by_visitor).alias("prev_t"),
                     F.lag("session_key").over(by_visitor).alias("prev_session"))
    inside = gaps.where("prev_session = session_key").agg(F.max(F.col("t") - F.col("prev_t"))).first()[0]
    between = gaps.where("prev_session != session_key").agg(F.min(F.col("t") - F.col("prev_t"))).first()[0]
    assert inside < SESSION_GAP_S < between


def test_purchases_point_at_orders_and_logins_at_members(generated):
    _, _, members, _, facts, _, events = generated
    purchases = events.where("event_type = 'purchase'")
    assert purchases.count() > 0
    assert purchases.join(facts, "order_id", "left_anti").count() == 0
    logged = events.where("member_id IS NOT NULL").select("member_id").distinct()
    assert logged.count() > 0
    assert logged.join(members.select("member_id"), "member_id", "left_anti").count() == 0


def test_planted_patterns_are_frequent_and_no_more(spark, generated):
    """Each pattern is in about pattern_rate / n_patterns of the orders (binomial: 2,495 orders, about
    20 each): not missing, and not in most orders (as when an order without a pattern got the last)."""
    gen, *_, items, _ = generated
    baskets = items.groupBy("order_id").agg(F.collect_set("product_idx").alias("b"))
    n = baskets.count()
    expected = n * CFG.pattern_rate / CFG.n_patterns
    for pattern in gen.patterns():
        together = baskets.where(F.forall(F.array(*[F.lit(x) for x in pattern]),
                                          lambda x: F.array_contains("b", x))).count()
        assert 0.5 * expected <= together <= 2 * expected, (pattern, together, expected)


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_order_lines_are_the_same_with_compiled_and_interpreted_code(spark, generated, evaluate_by, mode):
    """The generator's rows do not depend on how Spark evaluates them. Spark 4.0.1 gave a null
    element_at index the last pattern in compiled code and null in interpreted code."""
    gen, *_, facts, items, _ = generated
    evaluate_by(mode)
    fresh = gen.items(facts.localCheckpoint()).collect()      # not the module's cached plan
    assert sorted(fresh) == sorted(items.collect())
    assert len(fresh) < 2 * facts.count()


def test_churn_labels_follow_orders(spark, generated):
    gen, *_, facts, _, _ = generated
    labels = gen.churn_truth(facts)
    assert labels.count() > 0
    assert 0.05 < labels.where("churned").count() / labels.count() < 0.95
    cutoff = CFG.epoch(CFG.cutoff) + 86400
    later = facts.where((F.col("status") == "completed") & (F.col("order_epoch") >= cutoff)
                        & (F.col("order_epoch") < cutoff + 90 * 86400)).select("person_id").distinct()
    assert labels.where("churned").join(later, "person_id").count() == 0


def _late_joins_and_stops(gen, persons):
    """Members joining in the 120 days before the cutoff, churners stopping between 30 days
    before the cutoff and the end."""
    p, day, cutoff = F.col("pidx"), 86400, CFG.epoch(CFG.cutoff)
    return persons.agg(
        F.sum((gen.signup_epoch(p) > cutoff - 120 * day).cast("int")).alias("joined"),
        F.sum((gen.is_churner(p) & (gen.active_end_epoch(p) > cutoff - 30 * day)
               & (gen.active_end_epoch(p) < CFG.epoch(CFG.end) - day)).cast("int")).alias("stopped")).first()


def test_cutoff_study_demand_stops_joins_and_churners_before_the_cutoff(generated):
    gen, persons, *_ = generated
    late = _late_joins_and_stops(gen, persons)
    assert (late["joined"], late["stopped"]) == (0, 0)


def test_steady_demand_has_no_planted_break(spark):
    """demand=steady: members join until shortly before the end, churners stop on any date (also
    after the churn cutoff), and a person buys at a constant rate while active, so a late joiner
    does not buy faster (with cutoff_study, one who joins after the middle of the data buys about
    twice as fast: the same number of orders in half the time)."""
    gen = Generator(spark, replace(CFG, demand="steady"))
    persons = gen.person_frame().cache()
    late = _late_joins_and_stops(gen, persons)
    assert late["joined"] > 0 and late["stopped"] > 0
    p, day = F.col("pidx"), 86400
    orders = gen.order_facts(persons).groupBy("person_id").agg(F.count(F.lit(1)).alias("orders"))
    middle = (CFG.epoch(CFG.start) + CFG.epoch(CFG.end)) / 2
    rates = (persons.where(~gen.is_churner(p))
             .select("person_id", gen.signup_epoch(p).alias("signup"), gen.active_end_epoch(p).alias("stop"))
             .join(orders, "person_id", "left")
             .groupBy((F.col("signup") < middle).alias("early"))
             .agg((F.sum(F.coalesce("orders", F.lit(0))) / F.sum((F.col("stop") - F.col("signup")) / day)).alias("rate"))
             .collect())
    by = {r["early"]: r["rate"] for r in rates}
    assert 1 / 1.4 < by[False] / by[True] < 1.4, by
    persons.unpersist()


def test_an_unknown_demand_shape_is_refused(spark):
    with pytest.raises(ValueError, match="generate.demand: 'flat' is not one of cutoff_study, steady"):
        Generator(spark, replace(CFG, demand="flat"))


@pytest.mark.extended   # ~9 s; the campaigns readout tests use the planted effect
def test_campaign_contacts_are_randomised_and_the_effect_is_planted_on_treated_only(spark, generated):
    from memberlake.generate import campaigns as C

    gen, persons, *_ = generated
    planned = C.contacts(gen, persons).cache()
    base = gen.order_facts(persons)
    facts, truth = C.with_effects(gen, base, planned)
    rows = truth.groupBy("campaign_id", "is_control").agg(
        F.count(F.lit(1)).alias("n"), F.sum("orders_added").alias("added"),
        F.sum("orders_removed").alias("removed")).collect()
    by = {(r.campaign_id, r.is_control): r for r in rows}
    assert {c for c, _ in by} == {c.campaign_id for c in C.CAMPAIGNS}
    for c in C.CAMPAIGNS:
        control, treated = by[(c.campaign_id, True)], by[(c.campaign_id, False)]
        share = control.n / (control.n + treated.n)
        assert abs(share - c.control_share) < 0.12                          # a salted draw, not a sorted cut
        assert control.added == 0 and control.removed == 0                  # controls are untouched
        assert treated.added > 0
    # exactly the planted orders were added and removed
    added = sum(r.added for r in rows)
    removed = sum(r.removed for r in rows)
    assert facts.count() == base.count() + added - removed
    assert facts.where(F.col("order_id").startswith("X")).count() == added
    # the same seed gives the same contacts; the landing file has one row per contact
    again = C.contacts(Generator(spark, CFG), gen.person_frame())
    assert planned.exceptAll(again).count() == 0
    landing = C.contacts_landing(gen, planned)
    assert landing.count() == planned.count()
    assert landing.where("member_id IS NULL AND email IS NULL").count() == 0
    assert landing.where("is_control = 'true' AND sent_at IS NOT NULL").count() == 0


def test_campaign_segments_follow_the_order_history_before_the_send(spark, generated):
    """Lapsing = at least two completed orders before the send and the last 60-240 days before it;
    the planted effect is what a model on point-in-time features can see (do-not-disturb aside)."""
    from memberlake.generate import campaigns as C

    gen, persons, *_ = generated
    base = gen.order_facts(persons)
    typed = C.contacts(gen, persons)
    segmented = C.with_segments(gen, base, typed).select("campaign_id", "pidx", "send_epoch", "segment").collect()
    orders: dict[int, list[int]] = {}
    for r in base.where("status = 'completed'").select("pidx", "order_epoch").collect():
        orders.setdefault(r.pidx, []).append(r.order_epoch)
    seen = {"lapsing": 0, "other": 0}
    for r in segmented:
        before = [t for t in orders.get(r.pidx, []) if t < r.send_epoch]
        days = (r.send_epoch - max(before)) / 86400 if before else None
        expect = len(before) >= 2 and days is not None and 60 <= days < 240
        if r.segment == "do_not_disturb":
            continue
        assert (r.segment == "lapsing") == expect, (r, len(before), days)
        seen["lapsing" if expect else "other"] += 1
    assert seen["lapsing"] > 0 and seen["other"] > 0
    assert len(segmented) == typed.count()                                  # one segment per contact, none lost
