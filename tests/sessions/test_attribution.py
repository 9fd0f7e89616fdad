"""Every attribution model on a path set worked out by hand.

A: email (day 0) -> paid search (day 1) -> direct (day 2, converts, revenue 100)
B: social (0 h) -> social (1 h, converts, revenue 50)
C: email -> direct, never converts
Markov (order 1): start->email 2, start->social 1; email->paid 1, email->direct 1; paid->direct 1;
direct->conversion 1, direct->null 1; social->social 1, social->conversion 1.
P(conversion) = 2/3 * 1/2 + 1/3 * 1 = 2/3. Removing email: 1/3 (effect 0.5); paid: 1/2 (0.25);
direct: 1/3 (0.5); social: 1/3 (0.5). Shares: 0.5/1.75 etc.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from memberlake.sessions.attribution import journeys, markov, markov_attribution, rule_based, transition_counts

T0 = datetime(2024, 4, 1, 12)
SCHEMA = "person_id string, session_id string, session_start timestamp, channel string, campaign string, converted boolean, revenue double"


def _sessions(spark):
    d, h = timedelta(days=1), timedelta(hours=1)
    return spark.createDataFrame([
        ("A", "a1", T0, "email", "spring", False, 0.0), ("A", "a2", T0 + d, "paid search", "brand", False, 0.0),
        ("A", "a3", T0 + 2 * d, "direct", None, True, 100.0),
        ("A", "a0", T0 - 40 * d, "display", None, False, 0.0),        # outside the 30-day lookback
        ("B", "b1", T0, "social", None, False, 0.0), ("B", "b2", T0 + h, "social", None, True, 50.0),
        ("C", "c1", T0, "email", "spring", False, 0.0), ("C", "c2", T0 + h, "direct", None, False, 0.0),
    ], SCHEMA)


def _by_channel(df, model):
    out: dict[str, tuple[float, float]] = {}
    for r in df.where(f"model = '{model}'").collect():
        c, v = out.get(r.channel, (0.0, 0.0))
        out[r.channel] = (c + r.conversions, v + r.revenue)
    return out


@pytest.mark.parametrize("model, expected", [
    ("first_touch", {"email": 1.0, "social": 1.0}),
    ("last_touch", {"direct": 1.0, "social": 1.0}),
    ("last_non_direct", {"paid search": 1.0, "social": 1.0}),
    ("linear", {"email": 1 / 3, "paid search": 1 / 3, "direct": 1 / 3, "social": 1.0}),
    ("time_decay", {"email": 0.25 / 1.75, "paid search": 0.5 / 1.75, "direct": 1 / 1.75, "social": 1.0}),
    ("position_based", {"email": 0.4, "paid search": 0.2, "direct": 0.4, "social": 1.0}),
])
def test_rule_based_models_by_hand(spark, model, expected):
    # half-life 1 day: A's touches are 2, 1 and 0 days old -> weights 1/4, 1/2, 1 (normalised)
    # B's touches are 1 h and 0 h old, both social
    result = _by_channel(rule_based(_sessions(spark), 30, 1.0), model)
    got = {c: v[0] for c, v in result.items() if v[0] > 1e-12}
    assert got.keys() == expected.keys()
    for channel, conversions in expected.items():
        assert got[channel] == pytest.approx(conversions)
    assert sum(v[0] for v in result.values()) == pytest.approx(2.0)        # every model: 2 conversions
    assert sum(v[1] for v in result.values()) == pytest.approx(150.0)      # and all the revenue
    if model == "linear":
        assert result["email"][1] == pytest.approx(100 / 3)


def test_markov_transitions_removal_effects_and_shares(spark):
    sessions = _sessions(spark)
    paths = journeys(sessions, 30)
    counts = {(r.from_state, r.to_state): r.transitions for r in transition_counts(paths).collect()}
    assert counts == {("(start)", "email"): 2, ("(start)", "social"): 1, ("email", "paid search"): 1,
                      ("email", "direct"): 1, ("paid search", "direct"): 1, ("direct", "(conversion)"): 1,
                      ("direct", "(null)"): 1, ("social", "social"): 1, ("social", "(conversion)"): 1}
    table, effects = markov(paths)
    got = {c: (e, s) for c, e, s in effects}
    assert got["email"][0] == pytest.approx(0.5) and got["paid search"][0] == pytest.approx(0.25)
    assert got["direct"][0] == pytest.approx(0.5) and got["social"][0] == pytest.approx(0.5)
    assert got["paid search"][1] == pytest.approx(0.25 / 1.75)
    probs = {(r.from_state, r.to_state): r.probability for r in table.collect()}
    assert probs[("(start)", "email")] == pytest.approx(2 / 3) and probs[("direct", "(null)")] == pytest.approx(0.5)
    attributed = _by_channel(markov_attribution(sessions, effects), "markov")
    assert sum(v[0] for v in attributed.values()) == pytest.approx(2.0)
    assert sum(v[1] for v in attributed.values()) == pytest.approx(150.0)
    assert attributed["email"][0] == pytest.approx(2 * 0.5 / 1.75)


def test_second_order_states(spark):
    paths = journeys(_sessions(spark), 30)
    counts = {(r.from_state, r.to_state): r.transitions for r in transition_counts(paths, order=2).collect()}
    assert counts[("email > paid search", "paid search > direct")] == 1
    assert counts[("paid search > direct", "(conversion)")] == 1
    assert counts[("(start)", "email")] == 2
