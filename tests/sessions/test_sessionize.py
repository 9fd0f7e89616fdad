"""Every session rule on hand-made events: exact timeout, ties, max length, midnight, campaign."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from memberlake.sessions.sessionize import assign_sessions
from memberlake.settings import SessionSettings

SCHEMA = ("event_id string, anonymous_id string, event_ts timestamp, utm_source string, utm_medium string, "
          "utm_campaign string")


def _events(spark, rows, shuffle_seed=1):
    rows = list(rows)
    random.Random(shuffle_seed).shuffle(rows)          # input order must not matter
    return spark.createDataFrame(rows, SCHEMA)


def _groups(df):
    """Sessions as sorted lists of event ids, keyed by their session id's first event."""
    sessions: dict[str, list[str]] = {}
    for r in df.collect():
        sessions.setdefault(r.session_id, []).append(r.event_id)
    return sorted(sorted(v) for v in sessions.values())


def _t(h, m=0, s=0, day=1):
    return datetime(2024, 3, day, h, m, s)


def test_gap_equal_to_timeout_does_not_split_one_second_more_does(spark):
    rows = [("a1", "A", _t(10), None, None, None), ("a2", "A", _t(10, 30), None, None, None),
            ("a3", "A", _t(11, 0, 1), None, None, None)]
    out = assign_sessions(_events(spark, rows), SessionSettings(split_on_campaign=False))
    assert _groups(out) == [["a1", "a2"], ["a3"]]
    starts = {r.event_id: (r.session_start, r.visit_start) for r in out.collect()}
    assert starts["a2"] == (_t(10), _t(10)) and starts["a3"] == (_t(11, 0, 1), _t(11, 0, 1))


def test_ties_are_ordered_by_event_id_and_ids_are_deterministic(spark):
    rows = [("b2", "B", _t(12), None, None, None), ("b1", "B", _t(12), None, None, None),
            ("b3", "B", _t(12, 5), None, None, None)]
    first = assign_sessions(_events(spark, rows, 1), SessionSettings()).collect()
    again = assign_sessions(_events(spark, rows, 7), SessionSettings()).collect()
    assert len({r.session_id for r in first}) == 1
    assert {r.session_id for r in first} == {r.session_id for r in again}
    import hashlib

    expected = hashlib.sha256(f"B|{_t(12).strftime('%Y-%m-%d %H:%M:%S')}|b1".encode()).hexdigest()[:24]
    assert first[0].session_id == expected               # visitor + first event (b1 wins the tie)


def test_sessions_longer_than_max_length_are_cut_from_their_start(spark):
    # one event every 20 minutes for 25 hours: one visit, cut at 24 h after the first event
    rows = [(f"c{i:03d}", "C", _t(0) + timedelta(minutes=20 * i), None, None, None) for i in range(76)]
    out = assign_sessions(_events(spark, rows), SessionSettings(max_length_hours=24, split_on_campaign=False))
    groups = _groups(out)
    assert [len(g) for g in sorted(groups, key=len, reverse=True)] == [72, 4]   # 72 x 20 min = 24 h
    assert len({r.visit_start for r in out.collect()}) == 1


def test_midnight_split_in_a_time_zone(spark):
    rows = [("d1", "D", _t(23, 50), None, None, None), ("d2", "D", _t(0, 10, day=2), None, None, None),
            ("e1", "E", _t(4, 50), None, None, None), ("e2", "E", _t(5, 10), None, None, None)]
    utc = assign_sessions(_events(spark, rows), SessionSettings(midnight_timezone="UTC", split_on_campaign=False))
    assert _groups(utc) == [["d1"], ["d2"], ["e1", "e2"]]
    # New York is UTC-5 in early March: local midnight falls between E's events, not D's
    ny = assign_sessions(_events(spark, rows), SessionSettings(midnight_timezone="America/New_York",
                                                               split_on_campaign=False))
    assert _groups(ny) == [["d1", "d2"], ["e1"], ["e2"]]
    off = assign_sessions(_events(spark, rows), SessionSettings(split_on_campaign=False))
    assert _groups(off) == [["d1", "d2"], ["e1", "e2"]]


def test_campaign_change_starts_a_session_within_a_visit(spark):
    rows = [("f1", "F", _t(10), "google", "cpc", "x"), ("f2", "F", _t(10, 5), None, None, None),
            ("f3", "F", _t(10, 10), "google", "cpc", "x"),        # same utm again: no split
            ("f4", "F", _t(10, 15), "facebook", "social", "y"),   # different: split
            ("f5", "F", _t(10, 20), None, None, None),
            ("f6", "F", _t(12), "facebook", "social", "y")]       # after a gap: new visit anyway
    out = assign_sessions(_events(spark, rows), SessionSettings())
    assert _groups(out) == [["f1", "f2", "f3"], ["f4", "f5"], ["f6"]]
    visits = {r.event_id: r.visit_start for r in out.collect()}
    assert visits["f4"] == _t(10) and visits["f6"] == _t(12)
    off = assign_sessions(_events(spark, rows), SessionSettings(split_on_campaign=False))
    assert _groups(off) == [["f1", "f2", "f3", "f4", "f5"], ["f6"]]


def test_first_utm_of_a_new_visit_does_not_compare_with_the_previous_visit(spark):
    rows = [("g1", "G", _t(9), "google", "cpc", "x"), ("g2", "G", _t(11), None, None, None),
            ("g3", "G", _t(11, 5), "google", "cpc", "z")]
    out = assign_sessions(_events(spark, rows), SessionSettings())
    assert _groups(out) == [["g1"], ["g2", "g3"]]        # g3's utm is the visit's first: no split
