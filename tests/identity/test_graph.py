"""Identity edges, guards, persons and golden records on hand-built silver rows."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import functions as F

from memberlake.identity.clusters import person_graph
from memberlake.identity.evaluate import pairwise_metrics
from memberlake.identity.graph import apply_guards, observed_edges
from memberlake.identity.resolve import golden_records
from memberlake.settings import load_settings

IDENTITY = load_settings("local").identity
MEMBER_COLS = ("source string, member_id string, email string, phone string, first_name string, "
               "last_name string, _version timestamp")


def _members(spark, rows):
    return spark.createDataFrame(rows, MEMBER_COLS)


def _orders(spark, rows):
    return spark.createDataFrame(rows, "member_id string, email string, phone string")


def _events(spark, rows):
    return spark.createDataFrame(rows, "anonymous_id string, device_id string, member_id string")


def _persons(spark, members, orders=None, events=None):
    # Materialised between steps as the identity job does: an unmaterialised guard plan would be
    # re-run by every later reference (seconds per test on these few rows).
    edges = observed_edges(members, orders, events).localCheckpoint()
    kept, dropped = (df.localCheckpoint() for df in apply_guards(edges, IDENTITY))
    extra = members.select(F.lit("member").alias("id_type"), F.concat_ws(":", "source", "member_id").alias("value"))
    graph = person_graph(kept.select("src_type", "src_value", "dst_type", "dst_value"), extra)
    people = {(r.id_type, r.value): r.fresh_id for r in graph.collect()}
    return people, dropped


T0 = datetime(2024, 1, 1)


def test_shared_email_across_sources_links_within_a_source_does_not(spark):
    members = _members(spark, [
        ("crm", "1", "ann@x.com", None, "Ann", "Lee", T0),
        ("app", "2", "ann@x.com", None, "Ann", "Lee", T0),       # same person, other source: link
        ("crm", "3", "family@x.com", None, "Bob", "Ray", T0),
        ("crm", "4", "family@x.com", None, "Cy", "Ray", T0),     # two records of one source: shared
        ("crm", "5", None, None, "Dee", "Fox", T0),              # nothing to link: own person
    ])
    people, dropped = _persons(spark, members)
    assert people[("member", "crm:1")] == people[("member", "app:2")]
    assert people[("member", "crm:3")] != people[("member", "crm:4")]
    assert len({people[("member", f"crm:{i}")] for i in (1, 3, 4, 5)}) == 4
    reasons = {r.dst_value: r.reason for r in dropped.collect()}
    assert reasons["family@x.com"] == "shared:email:more_than_1_members_per_source"


def test_blocked_placeholders_never_link(spark):
    members = _members(spark, [
        ("crm", "1", "test@test.com", "+10000000000", "A", "A", T0),
        ("crm", "2", "TEST@test.com".lower(), "+10000000000", "B", "B", T0),
        ("pos", "3", "noemail@example.com", "+15555555555", "C", "C", T0),
        ("app", "4", "noemail@example.com", "+15555555555", "D", "D", T0),
    ])
    people, dropped = _persons(spark, members)
    assert len({people[("member", k)] for k in ("crm:1", "crm:2", "pos:3", "app:4")}) == 4
    reasons = {r.reason for r in dropped.collect()}
    assert {"blocked:email", "blocked:phone"} <= {x for r in reasons for x in r.split(",")}


def test_orders_and_events_stitch_guest_checkouts_and_cookies(spark):
    members = _members(spark, [("crm", "M1", "ann@x.com", "+12125550100", "Ann", "Lee", T0)])
    orders = _orders(spark, [(None, "ann@x.com", "+12125550199"),      # guest: email + new phone
                             ("M9", None, "+12125550199")])            # another member id with that phone
    events = _events(spark, [("c1", "d1", None), ("c1", "d1", "M1"), ("c2", "d1", None)])
    people, _ = _persons(spark, members, orders, events)
    person = people[("member", "crm:M1")]
    for node in [("email", "ann@x.com"), ("phone", "+12125550199"), ("member_id", "M9"),
                 ("cookie", "c1"), ("cookie", "c2"), ("device", "d1")]:
        assert people[node] == person, node


def test_shared_device_is_cut(spark):
    members = _members(spark, [("crm", "M1", None, None, "A", "A", T0), ("crm", "M2", None, None, "B", "B", T0)])
    events = _events(spark, [(f"c{i}", "kiosk", None) for i in range(6)] + [("c0", None, "M1"), ("c5", None, "M2")])
    people, dropped = _persons(spark, members, None, events)
    assert people[("member", "crm:M1")] != people[("member", "crm:M2")]
    assert dropped.where("reason LIKE 'shared:device%'").count() == 6


def test_family_tablet_with_two_logins_is_cut(spark):
    # two cookies on one device (under the cookie limit), each logged in as a different member
    members = _members(spark, [("crm", "M1", None, None, "Ann", "Lee", T0), ("crm", "M2", None, None, "Bo", "Lee", T0)])
    events = _events(spark, [("c1", "tab", None), ("c2", "tab", None), ("c1", None, "M1"), ("c2", None, "M2")])
    people, dropped = _persons(spark, members, None, events)
    assert people[("member", "crm:M1")] != people[("member", "crm:M2")]
    assert people[("cookie", "c1")] == people[("member", "crm:M1")]             # each keeps their own cookie
    assert dropped.where("reason = 'shared:device:more_than_1_members'").count() == 2


def test_person_ids_are_deterministic(spark):
    members = _members(spark, [("crm", "1", "a@x.com", None, "A", "A", T0), ("app", "9", "a@x.com", None, "A", "A", T0)])
    first, _ = _persons(spark, members)
    again, _ = _persons(spark, members.orderBy(F.desc("member_id")))
    assert first == again and first[("member", "crm:1")].startswith("P")


def test_golden_record_takes_latest_non_null_values(spark):
    members = _members(spark, [
        ("crm", "1", "a@x.com", "+12125550100", "Ann", "Lee", datetime(2024, 1, 1)),
        ("app", "2", "a@x.com", None, "Anne", None, datetime(2024, 6, 1)),
    ])
    members = members.select("*", *[F.lit(None).cast(t).alias(c) for c, t in [
        ("gender", "string"), ("birth_date", "date"), ("street", "string"), ("city", "string"),
        ("postcode", "string"), ("state", "string"), ("country", "string"), ("marketing_opt_in", "boolean"),
        ("registered_at", "timestamp")]])
    people, _ = _persons(spark, members.select("source", "member_id", "email", "phone", "first_name", "last_name", "_version"))
    graph = spark.createDataFrame([(k[0], k[1], v) for k, v in people.items()], "id_type string, value string, person_id string")
    golden = golden_records(members, graph).first()
    assert (golden.first_name, golden.last_name, golden.phone) == ("Anne", "Lee", "+12125550100")
    assert golden.member_records == ["app:2", "crm:1"] and golden.sources == ["app", "crm"]


def test_pairwise_metrics_hand_computed(spark):
    truth = spark.createDataFrame([("a", "T1"), ("b", "T1"), ("c", "T1"), ("d", "T2"), ("e", "T3")], "record string, true string")
    pred = spark.createDataFrame([("a", "P1"), ("b", "P1"), ("c", "P2"), ("d", "P2"), ("e", "P3")], "record string, pred string")
    m = pairwise_metrics(pred, truth)
    # true pairs: ab, ac, bc = 3; predicted pairs: ab, cd = 2; both: ab = 1
    assert (m["true_pairs"], m["predicted_pairs"]) == (3, 2)
    assert m["precision"] == 0.5 and abs(m["recall"] - 1 / 3) < 1e-12
    assert m["split_persons"] == 1 and m["overmerged_ids"] == 1 and m["largest_cluster_records"] == 2
    # B-cubed per record (precision, recall): a, b (1, 2/3); c (1/2, 1/3); d (1/2, 1); e (1, 1)
    assert abs(m["bcubed_precision"] - 4 / 5) < 1e-12 and abs(m["bcubed_recall"] - 11 / 15) < 1e-12
    assert abs(m["bcubed_f1"] - 2 * (4 / 5) * (11 / 15) / (4 / 5 + 11 / 15)) < 1e-12


def test_household_email_with_conflicting_phones_does_not_merge(spark):
    members = _members(spark, [
        ("crm", "1", "home@x.com", "+12125550100", "Ann", "Ray", T0),
        ("app", "2", "home@x.com", "+12125550199", "Bob", "Ray", T0),     # other person, other phone
        ("web", "3", "home@x.com", None, "Ann", "Ray", T0),               # no phone: no conflict alone
        ("crm", "7", "solo@x.com", "+13125550100", "Cy", "Fox", T0),
        ("app", "8", "solo@x.com", "+13125550100", "Cy", "Fox", T0),      # same phone: still one person
    ])
    people, dropped = _persons(spark, members)
    assert people[("member", "crm:1")] != people[("member", "app:2")]
    assert people[("member", "crm:7")] == people[("member", "app:8")]
    assert {r.reason for r in dropped.where("dst_value = 'home@x.com'").collect()} == {"shared:email:more_than_1_phone"}
