"""The readout on a hand-built campaign: outcomes per person in the window and the pre-period,
and the results row per variant and metric against the control."""
from __future__ import annotations

from datetime import datetime

import pytest
from scipy import stats

from memberlake.campaigns.readout import contacted, outcomes, readout
from memberlake.settings import CampaignSettings

SENT = datetime(2024, 3, 1, 10, 0)
CONTACTS = ("campaign_id string, member_id string, email string, phone string, variant string, is_control boolean, "
            "assigned_at timestamp, sent_at timestamp, delivered_at timestamp, opened_at timestamp, "
            "clicked_at timestamp")


def _contacts(spark):
    rows = [("C1", f"m{i}", None, None, "offer", False, None, SENT, None, SENT if i == 1 else None, None)
            for i in range(1, 5)]
    rows += [("C1", f"m{i}", None, None, "control", True, None, SENT, None, None, None) for i in range(5, 9)]
    rows.append(("C1", None, "p1@x.com", None, "offer", False, None, datetime(2024, 3, 2), None, None, None))  # again
    rows.append(("C2", "m1", None, None, "offer", False, None, None, None, None, None))   # no control; start_at
    return spark.createDataFrame(rows, CONTACTS)


def _graph(spark):
    rows = [("member_id", f"m{i}", f"P{i}") for i in range(1, 9)] + [("email", "p1@x.com", "P1")]
    return spark.createDataFrame(rows, "id_type string, value string, person_id string")


def _purchases(spark):
    rows = [("P1", datetime(2024, 3, 5), 10.0), ("P1", datetime(2024, 2, 20), 4.0),
            ("P2", datetime(2024, 3, 2), 5.0), ("P2", datetime(2024, 3, 10), 7.0),
            ("P3", datetime(2024, 3, 16), 100.0),                       # after the 14-day window
            ("P5", datetime(2024, 3, 3), 6.0), ("P6", datetime(2024, 2, 28), 3.0),
            ("P7", datetime(2024, 2, 1), 50.0)]                          # before the pre-period
    return spark.createDataFrame(rows, "person_id string, order_ts timestamp, net double")


def _sessions(spark):
    rows = [("P1", datetime(2024, 3, 2)), ("P5", datetime(2024, 2, 25)), ("P7", datetime(2024, 3, 14))]
    return spark.createDataFrame(rows, "person_id string, session_start timestamp")


def _campaigns(spark):
    return spark.createDataFrame([("C1", datetime(2024, 2, 28), 0.5), ("C2", datetime(2024, 4, 1), None)],
                                 "campaign_id string, start_at timestamp, cost_per_contact double")


def test_outcomes_per_person_in_the_window_and_the_pre_period(spark):
    people = contacted(_contacts(spark), _campaigns(spark), _graph(spark))
    got = {(r.campaign_id, r.person_id): r for r in
           outcomes(people, _purchases(spark), _sessions(spark), 14).collect()}
    assert len(got) == 9                                          # P1 once in C1 (first contact), once in C2
    p1 = got[("C1", "P1")]
    assert (p1.contacted_at, p1.variant, p1.opened) == (SENT, "offer", 1)
    assert (p1.converted, p1.orders, p1.revenue, p1.visited) == (1, 1, 10.0, 1)
    assert (p1.pre_converted, p1.pre_orders, p1.pre_revenue, p1.pre_visited) == (1, 1, 4.0, 0)
    assert (got[("C1", "P2")].orders, got[("C1", "P2")].revenue) == (2, 12.0)
    assert got[("C1", "P3")].converted == 0                       # bought a day after the window
    p5, p6, p7 = got[("C1", "P5")], got[("C1", "P6")], got[("C1", "P7")]
    assert (p5.is_control, p5.revenue, p5.pre_visited) == (True, 6.0, 1)
    assert (p6.pre_revenue, p7.visited, p7.pre_revenue) == (3.0, 1, 0.0)
    assert got[("C2", "P1")].contacted_at == datetime(2024, 4, 1)    # no send time: the campaign's start


def test_results_row_per_variant_and_metric_against_the_control(spark):
    out = readout(_contacts(spark), _campaigns(spark), _graph(spark), _purchases(spark), _sessions(spark),
                  CampaignSettings(), lambda *a: None)
    rows = {(r.campaign_id, r.metric): r for r in out.whole["campaign_results"].collect()}
    assert {c for c, _ in rows} == {"C1"}                          # C2 has no control: no readout
    assert set(m for _, m in rows) == {"converted", "orders", "revenue", "visited", "opened"}   # nobody clicked
    conv = rows[("C1", "converted")]
    assert (conv.variant, conv.control_variant, conv.contacts, conv.control_contacts) == ("offer", "control", 4, 4)
    assert (conv.mean, conv.control_mean, conv.difference) == pytest.approx((0.5, 0.25, 0.25))
    ref = stats.ttest_ind([1, 1, 0, 0], [1, 0, 0, 0], equal_var=False)
    assert conv.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (conv.ci_low, conv.ci_high) == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-9)
    assert conv.relative_lift == pytest.approx(1.0) and conv.significant is False
    revenue = rows[("C1", "revenue")]
    assert (revenue.mean, revenue.control_mean, revenue.difference) == pytest.approx((5.5, 1.5, 4.0))
    assert (revenue.incremental_total, revenue.cost, revenue.roi) == pytest.approx((16.0, 2.0, 7.0))   # (16-2)/2
    assert rows[("C1", "orders")].roi is None
    assert rows[("C1", "opened")].mean == pytest.approx(0.25)
    assert conv.srm_p_value is None and conv.srm_flag is None       # no planned split: no test
    assert conv.window_complete is True                            # data run to 16 March, the window to 15 March
    outcomes_ = out.whole["campaign_outcomes"]
    assert outcomes_.count() == 9 and outcomes_.where("campaign_id = 'C1' AND is_control").count() == 4


def test_a_skewed_split_is_flagged_against_the_planned_shares(spark):
    cfg = CampaignSettings(planned_split={"C1": {"control": 0.9, "offer": 0.1}})
    out = readout(_contacts(spark), _campaigns(spark), _graph(spark), _purchases(spark), None, cfg, lambda *a: None)
    rows = out.whole["campaign_results"].collect()
    assert rows and all(r.srm_flag for r in rows)            # 4 and 4 where 7.2 and 0.8 were planned
    even = CampaignSettings(planned_split={"C1": {"control": 0.5, "offer": 0.5}})
    rows = readout(_contacts(spark), _campaigns(spark), _graph(spark), _purchases(spark), None, even,
                   lambda *a: None).whole["campaign_results"].collect()
    assert all(r.srm_p_value == pytest.approx(1.0) and r.srm_flag is False for r in rows)
    assert "visited" not in {r.metric for r in rows}         # no sessions table: no visits to count
