"""A request resolves to the person's whole footprint, and every kind of table is matched."""
from __future__ import annotations

import hashlib
import hmac

from memberlake.privacy.forget import Matcher, footprint, request_seeds
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import load_settings

KEY = b"k"
P = Pseudonymiser(KEY, ("email", "phone"))
CLEAN = load_settings("local").clean


def h(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def _graph(spark):
    rows = [("member", "web:M1", "P1"), ("member_id", "M1", "P1"), ("email", h("ann@x.com"), "P1"),
            ("cookie", "c1", "P1"), ("device", "d1", "P1"),
            ("member", "web:M2", "P2"), ("member_id", "M2", "P2"), ("email", h("bob@x.com"), "P2")]
    return spark.createDataFrame(rows, "id_type string, value string, person_id string")


def test_request_is_normalised_like_clean_and_hashed(spark):
    seeds = request_seeds(spark, {"email": ["  Ann@X.com "], "member_id": ["web:M1", "M9"], "person_id": ["P7"]},
                          P, CLEAN)
    assert sorted(seeds) == sorted([("email", h("ann@x.com")), ("member", "web:M1"), ("member_id", "M9"),
                                    ("person_id", "P7")])


def test_footprint_takes_the_whole_component_and_old_ids(spark):
    id_map = spark.createDataFrame([("Pold", "P1")], "old_id string, current_id string")
    fp = footprint(_graph(spark), id_map, [("email", h("ann@x.com"))])
    assert fp.person_ids == {"P1", "Pold"}
    assert (fp.member_keys, fp.member_ids, fp.cookies, fp.devices) == ({"web:M1"}, {"M1"}, {"c1"}, {"d1"})
    assert fp.emails == {h("ann@x.com")}


def test_unknown_identifier_finds_nobody(spark):
    fp = footprint(_graph(spark), None, [("email", h("nobody@x.com"))])
    assert fp.person_ids == set() and fp.member_keys == set()


def test_conditions_match_raw_hashed_json_and_graph_rows(spark):
    fp = footprint(_graph(spark), None, [("member", "web:M1")])
    fp.order_ids = {"o1"}
    m = Matcher(fp, P, CLEAN)
    members = spark.createDataFrame([("web", "M1", "ANN@x.com "), ("crm", "M1", None), ("web", "M2", "bob@x.com")],
                                    "source string, member_id string, email string")
    # same bare id in another source is someone else; the e-mail in the clear still matches
    assert sorted(r.source + r.member_id for r in members.where(m.condition(members, False)).collect()) == ["webM1"]
    orders = spark.createDataFrame([("o1", None, None), ("o2", None, "ann@x.com"), ("o3", "M2", "bob@x.com")],
                                   "order_id string, member_id string, email string")
    assert sorted(r.order_id for r in orders.where(m.condition(orders, False)).collect()) == ["o1", "o2"]
    gold = spark.createDataFrame([("P1", h("ann@x.com")), ("P2", h("bob@x.com"))], "person_id string, email string")
    assert [r.person_id for r in gold.where(m.condition(gold, True)).collect()] == ["P1"]
    quarantine = spark.createDataFrame([('{"member_id":"M1","email":null}',), ('{"email":" ann@X.com"}',),
                                        ('{"member_id":"M2"}',)], "raw_record string")
    assert quarantine.where(m.condition(quarantine, False)).count() == 2
    edges = spark.createDataFrame([("member", "web:M1", "email", h("ann@x.com")), ("cookie", "c9", "device", "d1"),
                                   ("member", "web:M2", "email", h("bob@x.com"))],
                                  "src_type string, src_value string, dst_type string, dst_value string")
    assert edges.where(m.condition(edges, True)).count() == 2
    sessions = spark.createDataFrame([("s1", None, ["o1"]), ("s2", "P2", ["o3"])],
                                     "session_id string, person_id string, order_ids array<string>")
    assert [r.session_id for r in sessions.where(m.condition(sessions, True)).collect()] == ["s1"]
    products = spark.createDataFrame([("p1", "Lamp")], "product_id string, product_name string")
    assert m.condition(products, False) is None


def test_match_pairs_rows_of_the_person_are_matched_by_either_side(spark):
    fp = footprint(_graph(spark), None, [("member", "web:M1")])
    pairs = spark.createDataFrame([("web:M1", "crm:X9", 3), ("crm:X8", "web:M1", 2), ("web:M2", "crm:X9", 1)],
                                  "l_record string, r_record string, first_name_level int")
    cond = Matcher(fp, P, CLEAN).condition(pairs, True)
    assert sorted(r.first_name_level for r in pairs.where(cond).collect()) == [2, 3]


def test_contacts_in_the_clear_are_found_by_their_keyed_hash(spark):
    from memberlake.privacy.forget import Footprint, clear_contacts

    fp = Footprint(emails={h("ann@x.com")}, phones={h("+14155550123")})
    df = spark.createDataFrame([(" ANN@x.com", "(415) 555-0123", None), ("bob@x.com", "415 555 0199", None),
                                (None, None, '{"email":"Ann@X.com ","phone":"+1 415 555 0123"}'), (None, None, None)],
                               "email string, phone string, raw_record string")
    clear_contacts(df, fp, P, CLEAN)
    # as stored, so rows are matched by exactly what they hold
    assert (fp.clear_emails, fp.clear_phones) == ({" ANN@x.com", "Ann@X.com "}, {"(415) 555-0123", "+1 415 555 0123"})


def test_delete_keeps_the_deleted_values_out_of_the_table_history(spark, tmp_path):
    """A DELETE's predicate (with its literals) stays in the Delta log; forget deletes through a
    MERGE whose recorded predicate names columns only."""
    import json

    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse

    lake = Lakehouse(str(tmp_path))
    rows = [("SECRET-M1", "a", ["x"]), ("SECRET-M1", "a", ["x"]), ("M2", None, ["y"]), ("M3", "c", None)]
    lake.overwrite(spark.createDataFrame(rows, "member_id string, note string, tags array<string>"), "t")
    lake.delete("t", F.col("member_id").isin("SECRET-M1") | F.col("note").isNull())
    assert [r.member_id for r in lake.read("t").collect()] == ["M3"]     # duplicates and nulls too
    history = lake.delta_table("t").history().select("operation", "operationParameters").collect()
    assert history[0].operation == "MERGE"
    assert "SECRET-M1" not in json.dumps([r.operationParameters for r in history])
