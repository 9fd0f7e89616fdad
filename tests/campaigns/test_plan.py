"""Campaign planning: suppression reasons, a deterministic salted-hash split, strata, the power report."""
from __future__ import annotations

import math
from datetime import datetime

import pytest
from pyspark.sql import functions as F
from scipy import stats

from memberlake.campaigns.plan import (
    assign,
    audience,
    contact_history,
    forgotten,
    plan_campaign,
    power_rows,
    suppress,
)
from memberlake.campaigns.stats import minimum_detectable_effect
from memberlake.contract import ENTITIES
from memberlake.settings import CampaignPlan, CampaignSettings, SettingsError, load_settings

SEND = datetime(2024, 6, 1)
PLAN = CampaignPlan(audience="true", variants={"offer": 0.8, "control": 0.2}, control="control")


def _people(spark):
    rows = [("P1", True, "gold"), ("P2", False, "gold"), ("P3", None, "silver"), ("P4", True, "silver"),
            ("P5", True, "bronze"), ("P6", True, "bronze"), ("P7", True, "gold")]
    return spark.createDataFrame(rows, "person_id string, marketing_opt_in boolean, value_tier string")


def _contacts(spark):
    rows = [(f"P{i}", f"m{i}", f"p{i}@x.com", None) for i in range(1, 8) if i != 6]
    rows.append(("P6", "m6", None, "+15550006"))                        # no e-mail
    return spark.createDataFrame(rows, "person_id string, member_id string, email string, phone string")


def _history(spark):
    rows = [("A", "P4", datetime(2024, 5, 28)),                          # 4 days before: too recent
            ("B", "P5", datetime(2024, 5, 2)), ("C", "P5", datetime(2024, 5, 10)),
            ("D", "P5", datetime(2024, 5, 20)),                          # three in 30 days: at the cap of 3
            ("E", "P7", datetime(2024, 6, 10))]                          # planned 9 days after: far enough
    return spark.createDataFrame(rows, "campaign_id string, person_id string, contacted_at timestamp")


def test_suppression_keeps_every_reason(spark):
    cfg = CampaignSettings(min_days_between_contacts=7, frequency_cap=3, frequency_cap_days=30)
    gone = spark.createDataFrame([("P2",)], "person_id string").withColumn("_forgotten", F.lit(True))
    got = {r.person_id: sorted(r.suppressed_by) for r in
           suppress(_people(spark), _contacts(spark), _history(spark), gone, PLAN, cfg, SEND).collect()}
    assert got == {"P1": [], "P2": ["forgotten", "no_marketing_opt_in"], "P3": ["no_marketing_opt_in"],
                   "P4": ["recently_contacted"], "P5": ["frequency_cap"], "P6": ["unreachable"], "P7": []}
    sms = CampaignPlan(channel="sms")
    assert {r.person_id for r in suppress(_people(spark), _contacts(spark), None, None, sms, cfg, SEND)
            .where(F.array_contains("suppressed_by", "unreachable")).collect()} == {f"P{i}" for i in range(1, 8)} - {"P6"}
    off = CampaignSettings(frequency_cap=0, min_days_between_contacts=0)
    assert suppress(_people(spark), _contacts(spark), _history(spark), None, PLAN, off, SEND).where(
        F.array_contains("suppressed_by", "frequency_cap") | F.array_contains("suppressed_by", "recently_contacted")
    ).count() == 0


def test_contact_history_leaves_out_controls_and_the_planned_campaign(spark):
    contacts = spark.createDataFrame(
        [("A", "m1", None, None, "offer", False, None, datetime(2024, 5, 1), None, None, None),
         ("A", "m2", None, None, "control", True, None, datetime(2024, 5, 1), None, None, None),
         ("X", "m3", None, None, "offer", False, None, datetime(2024, 5, 1), None, None, None)],
        "campaign_id string, member_id string, email string, phone string, variant string, is_control boolean, "
        "assigned_at timestamp, sent_at timestamp, delivered_at timestamp, opened_at timestamp, clicked_at timestamp")
    graph = spark.createDataFrame([("member_id", f"m{i}", f"P{i}") for i in (1, 2, 3)],
                                  "id_type string, value string, person_id string")
    assignments = spark.createDataFrame(
        [("B", "P2", "assigned", False, datetime(2024, 6, 3)), ("B", "P3", "assigned", True, datetime(2024, 6, 3)),
         ("B", "P4", "suppressed", None, datetime(2024, 6, 3))],
        "campaign_id string, person_id string, status string, is_control boolean, send_at timestamp")
    got = sorted((r.campaign_id, r.person_id) for r in
                 contact_history(contacts, None, graph, assignments, "X").collect())
    assert got == [("A", "P1"), ("B", "P2")]


def test_forgotten_persons_follow_the_id_map(spark):
    requests = spark.createDataFrame([(["P1", "P9"],)], "person_ids array<string>")
    id_map = spark.createDataFrame([("P1", "P5"), ("P2", "P6")], "old_id string, current_id string")
    assert sorted(r.person_id for r in forgotten(requests, id_map).collect()) == ["P1", "P5", "P9"]
    assert forgotten(None, id_map) is None


def _many(spark, n: int):
    return spark.range(n).select(F.format_string("P%06d", "id").alias("person_id"),
                                 F.when(F.col("id") % 7 == 0, "gold").otherwise("silver").alias("value_tier"))


def test_assignment_is_deterministic_balanced_and_stable_when_the_audience_grows(spark):
    plan = CampaignPlan(variants={"a": 0.45, "b": 0.45, "control": 0.1})
    first = {r.person_id: r.variant for r in assign(_many(spark, 20_000), "C1", plan).collect()}
    again = {r.person_id: r.variant for r in assign(_many(spark, 20_000), "C1", plan).collect()}
    assert first == again
    counts = {v: sum(1 for x in first.values() if x == v) for v in plan.variants}
    for variant, share in plan.variants.items():      # within 4 binomial standard deviations
        assert abs(counts[variant] - 20_000 * share) < 4 * math.sqrt(20_000 * share * (1 - share)), counts
    grown = {r.person_id: r.variant for r in assign(_many(spark, 30_000), "C1", plan).collect()}
    assert all(grown[p] == v for p, v in first.items())
    other = {r.person_id: r.variant for r in assign(_many(spark, 20_000), "C2", plan).collect()}
    assert sum(other[p] != v for p, v in first.items()) > 5_000          # another campaign, another split
    salted = CampaignPlan(variants=plan.variants, salt="redraw")
    assert {r.person_id: r.variant for r in assign(_many(spark, 20_000), "C1", salted).collect()} != first


def test_stratified_assignment_gives_the_shares_in_every_stratum(spark):
    plan = CampaignPlan(variants={"offer": 0.5, "control": 0.5}, stratify_by="value_tier")
    rows = assign(_many(spark, 701), "C1", plan).groupBy("stratum", "variant").count().collect()
    got = {(r.stratum, r.variant): r["count"] for r in rows}
    assert got[("gold", "offer")] + got[("gold", "control")] == 101     # ids 0, 7, ..., 700
    assert abs(got[("gold", "offer")] - got[("gold", "control")]) <= 1
    assert abs(got[("silver", "offer")] - got[("silver", "control")]) <= 1


def test_max_contacts_samples_independently_of_the_split(spark):
    plan = CampaignPlan(variants={"offer": 0.5, "control": 0.5}, max_contacts=1_000)
    out = assign(_many(spark, 10_000), "C1", plan)
    counts = {r.variant: r["count"] for r in out.groupBy("variant").count().collect()}
    assert sum(counts.values()) == 1_000
    assert abs(counts["offer"] - 500) < 4 * math.sqrt(1_000 * 0.25)     # not all the lowest buckets


def test_minimum_detectable_effect_by_hand():
    # (z_0.975 + z_0.8) * 0.5 * sqrt(2 / 1000) = (1.959964 + 0.841621) * 0.5 * 0.0447214
    assert minimum_detectable_effect(0.5, 1000, 1000, 0.05, 0.8) == pytest.approx(0.062645, abs=1e-6)
    assert math.isnan(minimum_detectable_effect(0.5, 0, 1000))


def test_power_rows_use_the_pooled_baseline(spark):
    # offer: 8 persons, 2 converted with revenue 10 and 30; control: 2 persons, 1 converted, revenue 20
    sums = [{"variant": "offer", "n": 8, "converted": 2.0, "converted2": 2.0, "revenue": 40.0, "revenue2": 1000.0},
            {"variant": "control", "n": 2, "converted": 1.0, "converted2": 1.0, "revenue": 20.0, "revenue2": 400.0}]
    rows = {r[2]: r for r in power_rows(sums, "C1", PLAN, CampaignSettings(), SEND)}
    conv = rows["converted"]
    assert (conv[3], conv[4], conv[5]) == (8, 2, 0.3)
    sd = math.sqrt((3 - 9 / 10) / 9)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert conv[6] == pytest.approx(sd) and conv[9] == pytest.approx(z * sd * math.sqrt(1 / 8 + 1 / 2))
    assert conv[10] == pytest.approx(conv[9] / 0.3)
    rev = rows["revenue"]
    assert rev[5] == pytest.approx(6.0) and rev[6] == pytest.approx(math.sqrt((1400 - 3600 / 10) / 9))


def test_plan_writes_every_audience_member_and_a_send_list_in_the_contact_shape(spark):
    purchases = spark.createDataFrame([("P1", datetime(2024, 5, 25), 12.0)],
                                      "person_id string, order_ts timestamp, net double")
    plan = CampaignPlan(audience="value_tier <> 'bronze' OR value_tier IS NULL",
                        variants={"offer": 0.5, "control": 0.5})
    people = audience(_people(spark), None, None)
    out = plan_campaign("C1", plan, CampaignSettings(frequency_cap=3), SEND, people, _contacts(spark),
                        _history(spark), None, purchases, lambda *a: None)
    rows, predicate = out.replaced["campaign_assignments"]
    assert predicate == "campaign_id = 'C1'"
    got = {r.person_id: r for r in rows.collect()}
    assert sorted(got) == ["P1", "P2", "P3", "P4", "P7"]                    # bronze P5, P6 not in the audience
    assert {p for p, r in got.items() if r.status == "assigned"} == {"P1", "P7"}
    assert got["P4"].suppressed_by == ["recently_contacted"] and got["P4"].variant is None
    assert all(r.is_control == (r.variant == "control") for r in got.values() if r.status == "assigned")
    send = out.send_list
    contract = [c.name for c in ENTITIES["campaign_contacts"].columns]
    assert send.columns == contract
    assert sorted(r.member_id for r in send.collect()) == ["m1", "m7"]
    power = {(r[1], r[2]): r for r in out.power}
    assert set(power) == {("offer", "converted"), ("offer", "revenue")}
    assert power[("offer", "converted")][5] == 0.5                          # P1 of P1, P7 bought before
    assert out.send_list.where("is_control").count() == out.counts.get("control", 0)


def test_plans_are_checked_before_spark_starts(tmp_path):
    from memberlake.rules import check_settings

    with pytest.raises(SettingsError, match="campaigns"):
        load_settings("local", overrides=['campaigns.plans={"C1": {"variants": {"offer": 0.5, "control": 0.4}}}'])
    with pytest.raises(SettingsError, match="control"):
        load_settings("local", overrides=['campaigns.plans={"C1": {"variants": {"a": 0.5, "b": 0.5}}}'])
    bad = load_settings("local", overrides=['campaigns.plans={"C1": {"audience": "lifecycle = 1"}}'])
    with pytest.raises(SettingsError, match=r"campaigns\.plans\.C1\.audience.*lifecycle"):
        check_settings(bad)
    ok = load_settings("local", overrides=[
        'campaigns.plans={"C1": {"audience": "risk_band = \'high\' AND clv > 10", "stratify_by": "value_tier"}}'])
    check_settings(ok)


def test_target_top_keeps_the_highest_ranked_then_splits_them(spark):
    people = _people(spark).where("person_id IN ('P1', 'P4', 'P7')").union(
        spark.createDataFrame([("P8", True, "gold"), ("P9", True, "gold")], "person_id string, marketing_opt_in boolean, "
                              "value_tier string"))
    scores = spark.createDataFrame([("P1", 0.30, 1), ("P7", 0.10, 3), ("P8", 0.50, 1), ("P9", -0.2, 10)],
                                   "person_id string, uplift double, decile int")
    contacts = _contacts(spark).union(spark.createDataFrame([("P8", "m8", "p8@x.com", None), ("P9", "m9", "p9@x.com", None)],
                                                            "person_id string, member_id string, email string, phone string"))
    plan = CampaignPlan(variants={"offer": 0.5, "control": 0.5}, target_top=2)
    out = plan_campaign("C1", plan, CampaignSettings(), SEND, audience(people, None, None, scores), contacts,
                        _history(spark), None, spark.createDataFrame([], "person_id string, order_ts timestamp, net double"),
                        lambda *a: None)
    got = {r.person_id: r.status for r in out.replaced["campaign_assignments"][0].collect()}
    # P4 was contacted 4 days ago; of P1, P7, P8, P9 the two with the highest uplift x clv (clv unknown: 1)
    assert got == {"P1": "assigned", "P8": "assigned", "P4": "suppressed", "P7": "not_selected", "P9": "not_selected"}
