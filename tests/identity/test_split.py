"""Splitting oversized components at their weakest edges."""
from __future__ import annotations

from memberlake.identity.split import split_oversized

WEIGHTS = {"member-member_id": 5, "member-email": 4, "member-phone": 4, "cookie-member_id": 2, "cookie-device": 1}
SCHEMA = "src_type string, src_value string, dst_type string, dst_value string, origin string, observations long"


def _person(i: int, seen: int = 2) -> list[tuple]:
    m = f"crm:{i}"
    return [("member", m, "email", f"p{i}@x.com", "members", seen), ("member", m, "phone", f"+1555{i:04d}", "members", seen)]


def _split(spark, rows, max_size):
    edges = spark.createDataFrame(rows, SCHEMA)
    kept, dropped = split_oversized(edges, max_size, WEIGHTS)
    pairs = lambda df: {(r.src_value, r.dst_value) for r in df.collect()}  # noqa: E731
    return pairs(kept), {(r.src_value, r.dst_value): r.reason for r in dropped.collect()}, edges


def test_weak_links_between_persons_are_cut(spark):
    # two persons (3 identifiers each) joined through a shared device: cookie A - device - cookie B
    rows = _person(1) + _person(2) + [
        ("cookie", "cA", "member_id", "1", "events", 5), ("cookie", "cB", "member_id", "2", "events", 5),
        ("member", "crm:1", "member_id", "1", "members", 1), ("member", "crm:2", "member_id", "2", "members", 1),
        ("cookie", "cA", "device", "d1", "events", 3), ("cookie", "cB", "device", "d1", "events", 3),
    ]
    kept, dropped, edges = _split(spark, rows, max_size=6)
    # 11 identifiers in one component > 6: the cookie-device links (strength 1) go first, and suffice
    assert dropped == {("cA", "d1"): "split:component_size>6", ("cB", "d1"): "split:component_size>6"}
    assert len(kept) + len(dropped) == edges.count()


def test_small_components_are_untouched(spark):
    rows = _person(1) + _person(2) + [("cookie", "cA", "device", "d1", "events", 1)]
    kept, dropped, _ = _split(spark, rows, max_size=3)
    assert dropped == {} and len(kept) == 5


def test_an_edge_seen_once_goes_before_one_seen_again(spark):
    # a star of 5 e-mail links around one member record (6 identifiers), two of them seen once
    rows = [("member", "crm:9", "email", f"e{i}@x.com", "members", 1 if i < 2 else 3) for i in range(5)]
    kept, dropped, _ = _split(spark, rows, max_size=4)
    assert set(dropped) == {("crm:9", "e0@x.com"), ("crm:9", "e1@x.com")}
    assert len(kept) == 3


def test_the_strongest_level_is_never_cut(spark):
    rows = [("member", "crm:9", "email", f"e{i}@x.com", "members", 3) for i in range(5)]
    kept, dropped, _ = _split(spark, rows, max_size=2)
    assert dropped == {} and len(kept) == 5      # reported by the job as component_size, not split
