"""Bronze -> silver rules per entity, on tiny hand-made bronze rows (with nulls and duplicates)."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from pyspark.sql import functions as F

from memberlake.clean.entities import RAW, REASONS, VERSION, is_newer, latest_per_key, standardise
from memberlake.contract import ENTITIES, EVENTS, MEMBERS, ORDER_ITEMS, ORDERS
from memberlake.settings import load_settings

SETTINGS = load_settings("local")
INGESTED = datetime(2024, 6, 1, 12, 0)


def _bronze(spark, entity, rows, batch="b1", ingested=INGESTED):
    cols = entity.column_names
    data = [tuple(r.get(c) for c in cols) + ("file:/f.csv", ingested, batch, r.get("_hash", f"h{i}"))
            for i, r in enumerate(rows)]
    schema = ", ".join(f"{c} string" for c in cols) + ", _source_file string, _ingested_at timestamp, _batch_id string, _record_hash string"
    return spark.createDataFrame(data, schema)


def _clean(spark, entity, rows, **kw):
    return standardise(_bronze(spark, entity, rows, **kw), entity, SETTINGS.clean, SETTINGS.landing)


def test_members_standardised_and_flagged(spark):
    out = _clean(spark, MEMBERS, [
        {"member_id": " m1 ", "source": "CRM", "first_name": " aNN ", "last_name": "o'neil", "gender": "F",
         "birth_date": "1990-01-31", "email": " Ann@X.com ", "phone": "(212) 555-0100", "postcode": "2134",
         "country": "usa", "registered_at": "2024-01-01 10:00:00", "marketing_opt_in": "Y"},
        {"member_id": "m2", "gender": "robot", "birth_date": "1890-01-01", "email": "not-an-email",
         "phone": "12", "updated_at": "2024-02-01T00:00:00Z"},
        {"member_id": "m3", "birth_date": "2030-01-01"},   # in the future relative to ingest
        {"member_id": "m4", "birth_date": "31/31/1990"},
    ]).orderBy("member_id").collect()
    m1, m2, m3, m4 = out
    assert (m1.member_id, m1.source, m1.first_name, m1.last_name, m1.gender) == ("m1", "crm", "Ann", "O'neil", "female")
    assert (m1.email, m1.phone, m1.postcode, m1.country) == ("ann@x.com", "+12125550100", "02134", "US")
    assert m1.birth_date == date(1990, 1, 31) and m1.marketing_opt_in is True
    assert m1._flags == [] and m1[REASONS] == []
    assert m1[VERSION] == datetime(2024, 1, 1, 10)            # no updated_at: registered_at
    assert (m2.source, m2.gender, m2.birth_date, m2.email, m2.phone, m2.country) == ("default", "unknown", None, None, None, "US")
    assert sorted(m2._flags) == sorted(["gender_unmapped", "birth_date_out_of_range", "email_invalid",
                                        "phone_invalid", "country_defaulted"])
    assert m2[VERSION] == datetime(2024, 2, 1)
    assert m3.birth_date is None and "birth_date_out_of_range" in m3._flags
    assert m3[VERSION] == INGESTED                             # no dates at all: ingest time
    assert m4.birth_date is None and "birth_date_unparseable" in m4._flags


def test_member_phones_are_read_with_the_members_own_country(spark):
    """Issue 25: a member abroad got a wrong or no E.164 number under one configured country."""
    out = {r.member_id: r for r in _clean(spark, MEMBERS, [
        {"member_id": "cn", "phone": "138 0013 8000", "country": "China"},        # +86 mobile
        {"member_id": "gb", "phone": "07911 123456", "country": "GB"},            # UK trunk 0
        {"member_id": "gb2", "phone": "020 7946 0958", "country": "united kingdom"},
        {"member_id": "us", "phone": "(212) 555-0100", "country": None},          # default country
        {"member_id": "fr", "phone": "+33 6 12 34 56 78", "country": "US"},       # international wins
        {"member_id": "bad", "phone": "12345", "country": "GB"},
        {"member_id": "odd", "phone": "+1 123 456 7890", "country": "US"},        # possible, not assigned
    ]).collect()}
    got = {k: (r.phone, r.phone_type) for k, r in out.items()}
    assert got == {"cn": ("+8613800138000", "mobile"), "gb": ("+447911123456", "mobile"),
                   "gb2": ("+442079460958", "fixed_line"), "us": ("+12125550100", "fixed_line_or_mobile"),
                   "fr": ("+33612345678", "mobile"), "bad": (None, None), "odd": ("+11234567890", "unknown")}
    assert "phone_invalid" in out["bad"]._flags and "phone_unassigned" in out["odd"]._flags
    assert not {"phone_invalid", "phone_unassigned"} & set(out["cn"]._flags)


def test_orders_status_channel_amount_rules(spark):
    out = {r.order_id: r for r in _clean(spark, ORDERS, [
        {"order_id": "o1", "order_ts": "2024-01-01T10:00:00Z", "status": "Shipped", "channel": "POS", "total_amount": "$10.00"},
        {"order_id": "o2", "order_ts": "2024-01-01T10:00:00Z", "status": None, "channel": "kiosk", "total_amount": "-5"},
        {"order_id": "o3", "order_ts": "2024-01-01T10:00:00Z", "status": "lost", "total_amount": "250000", "currency": "eur"},
        {"order_id": "o4", "order_ts": "2024-01-01T10:00:00Z", "status": " Unavailable "},   # not fulfilled
    ]).collect()}
    assert (out["o1"].status, out["o1"].channel, out["o1"].total_amount, out["o1"].currency) == ("completed", "store", Decimal("10.00"), "USD")
    assert out["o2"].status == "completed" and "status_defaulted" in out["o2"]._flags
    assert out["o2"].channel == "kiosk"                        # unmapped channel kept, lower-cased
    assert out["o2"][REASONS] == ["negative_total_amount"]
    assert "status_unknown" in out["o3"]._flags and "amount_outlier" in out["o3"]._flags
    assert out["o3"].currency == "EUR" and out["o3"][REASONS] == []
    assert out["o4"].status == "cancelled" and "status_unknown" not in out["o4"]._flags
    # The bronze row as JSON (absent fields left out) rides along on rejected rows only.
    assert json.loads(out["o2"][RAW]) == {"order_id": "o2", "order_ts": "2024-01-01T10:00:00Z", "channel": "kiosk",
                                          "total_amount": "-5"}
    assert out["o1"][RAW] is None and out["o3"][RAW] is None


def test_order_items_rules_and_derived_line_numbers(spark):
    out = _clean(spark, ORDER_ITEMS, [
        {"order_id": "o1", "line_no": None, "product_id": "p1", "quantity": "1", "unit_price": "2", "_hash": "b"},
        {"order_id": "o1", "line_no": None, "product_id": "p2", "quantity": "2.0", "unit_price": "3", "_hash": "a"},
        {"order_id": "o2", "line_no": "1", "product_id": "p1", "quantity": "0", "unit_price": "-1", "discount_amount": "-2"},
        {"order_id": "o3", "line_no": "1", "product_id": "p1", "quantity": "5000", "unit_price": "0", "discount_amount": "9"},
    ]).collect()
    rows = {(r.order_id, r.product_id): r for r in out}
    # Missing line numbers are derived from the line's content: negative, distinct, and never a
    # delivered number
    derived = rows[("o1", "p2")].line_no, rows[("o1", "p1")].line_no
    assert derived[0] < 0 and derived[1] < 0 and derived[0] != derived[1]
    assert rows[("o1", "p2")].quantity == 2 and rows[("o1", "p1")].discount_amount == Decimal("0.00")
    assert "line_no_derived" in rows[("o1", "p1")]._flags
    assert sorted(rows[("o2", "p1")][REASONS]) == ["negative_discount", "negative_unit_price", "non_positive_quantity"]
    assert sorted(rows[("o3", "p1")]._flags) == ["discount_exceeds_gross", "quantity_outlier"]


def test_derived_line_numbers_are_stable_across_batches(spark):
    """Issue 25: a later batch's extra line for an order was numbered 1 again, and the MERGE wrote
    it over the first line. Now each line's number comes from the line itself."""
    first = {"order_id": "o1", "line_no": None, "product_id": "p1", "quantity": "1", "unit_price": "2", "_hash": "x"}
    second = {"order_id": "o1", "line_no": None, "product_id": "p2", "quantity": "1", "unit_price": "5", "_hash": "y"}
    twice = {**first, "_hash": "x"}                       # the same line twice in one file: two lines
    one = {r.product_id: r.line_no for r in _clean(spark, ORDER_ITEMS, [first], batch="b1").collect()}
    two = [(r.product_id, r.line_no) for r in _clean(spark, ORDER_ITEMS, [second, first, twice], batch="b2").collect()]
    full = [(r.product_id, r.line_no) for r in _clean(spark, ORDER_ITEMS, [first, second], batch="b3").collect()]
    assert dict(two)["p2"] != one["p1"] and one["p1"] in [n for p, n in two if p == "p1"]
    assert sorted(n for p, n in two if p == "p1") == [one["p1"] - 1, one["p1"]]      # the 2nd copy: next slot
    assert dict(full) == {"p1": one["p1"], "p2": dict(two)["p2"]}                    # --full numbers the same


def test_a_key_delivered_twice_with_different_contents_is_flagged(spark):
    out = _clean(spark, ORDER_ITEMS, [
        {"order_id": "o1", "line_no": "1", "product_id": "p1", "quantity": "1", "unit_price": "2", "_hash": "a"},
        {"order_id": "o1", "line_no": "1", "product_id": "p9", "quantity": "1", "unit_price": "2", "_hash": "b"},
        {"order_id": "o1", "line_no": "2", "product_id": "p2", "quantity": "1", "unit_price": "2", "_hash": "c"},
        {"order_id": "o1", "line_no": "2", "product_id": "p2", "quantity": "1", "unit_price": "2", "_hash": "c"},
    ]).collect()
    flagged = sorted((r.line_no, r.product_id) for r in out if "duplicate_key" in r._flags)
    assert flagged == [(1, "p1"), (1, "p9")]                  # an exact re-delivery is not a clash


def test_rows_are_shuffled_once_for_every_window_on_the_key(spark):
    """Without a version column the rows pass two or three windows on the key (derived line
    numbers, duplicate keys, latest per key): hashed once on the key columns they share, none of
    them shuffles again, and the cached standardised rows keep that partitioning."""
    from pyspark import StorageLevel

    from memberlake.clean.batches import silver_rows

    rows = [{"order_id": f"o{i % 3}", "line_no": None if i % 2 else str(i), "product_id": f"p{i}", "quantity": "1",
             "unit_price": "2", "_hash": f"h{i}"} for i in range(8)]
    cached = _clean(spark, ORDER_ITEMS, rows).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        standardising = cached._jdf.queryExecution().executedPlan().toString()
        silver = silver_rows(cached, ORDER_ITEMS)
        assert silver.count() == 8
        after_cache = silver._jdf.queryExecution().executedPlan().toString().split("InMemoryRelation")[0]
    finally:
        cached.unpersist()
    assert "InMemoryTableScan" in after_cache and "Exchange" not in after_cache
    assert standardising.count("Exchange hashpartitioning") == 1 and "REPARTITION_BY_COL" in standardising


def test_events_get_a_stable_id_when_none_is_given(spark):
    row = {"event_ts": "2024-01-01T00:00:00Z", "anonymous_id": "a1", "event_type": "Page View", "utm_source": " Google "}
    first = _clean(spark, EVENTS, [row]).first()
    again = _clean(spark, EVENTS, [row], batch="b2").first()
    assert first.event_id == again.event_id and first.event_id.startswith("h_")
    assert first.event_type == "page_view" and first.utm_source == "google"
    assert "event_id_derived" in first._flags


def test_latest_per_key_keeps_newest_version_then_latest_ingest(spark):
    rows = [
        {"member_id": "m1", "source": "crm", "first_name": "old", "updated_at": "2024-01-01T00:00:00Z", "_hash": "1"},
        {"member_id": "m1", "source": "crm", "first_name": "new", "updated_at": "2024-03-01T00:00:00Z", "_hash": "2"},
        {"member_id": "m1", "source": "crm", "first_name": "new", "updated_at": "2024-03-01T00:00:00Z", "_hash": "2"},  # exact dup
        {"member_id": "m1", "source": "pos", "first_name": "other source", "_hash": "3"},
        {"member_id": "m2", "source": None, "first_name": None, "_hash": "4"},            # nulls
    ]
    out = latest_per_key(_clean(spark, MEMBERS, rows), list(MEMBERS.key)).orderBy("source", "member_id").collect()
    assert [(r.source, r.member_id, r.first_name) for r in out] == [
        ("crm", "m1", "New"), ("default", "m2", None), ("pos", "m1", "Other Source")]


def test_is_newer_merge_condition(spark):
    df = spark.createDataFrame(
        [(datetime(2024, 1, 2), datetime(2024, 1, 1), "a", datetime(2024, 1, 1), datetime(2024, 1, 1), "a"),
         (datetime(2024, 1, 1), datetime(2024, 1, 1), "a", datetime(2024, 1, 2), datetime(2024, 1, 1), "a"),
         (datetime(2024, 1, 1), datetime(2024, 1, 2), "a", datetime(2024, 1, 1), datetime(2024, 1, 1), "b"),
         (datetime(2024, 1, 1), datetime(2024, 1, 1), "a", datetime(2024, 1, 1), datetime(2024, 1, 1), "a"),
         (datetime(2024, 1, 1), datetime(2024, 1, 1), "a", None, datetime(2024, 1, 1), "a")],
        "sv timestamp, si timestamp, sh string, tv timestamp, ti timestamp, th string")
    cond = is_newer().replace("s._version", "sv").replace("t._version", "tv").replace("s._ingested_at", "si") \
        .replace("t._ingested_at", "ti").replace("s._record_hash", "sh").replace("t._record_hash", "th")
    assert [r.newer for r in df.select(F.expr(cond).alias("newer")).collect()] == [True, False, True, False, True]


def test_every_entity_has_a_standardiser_and_typed_schema(spark):
    for entity in ENTITIES.values():
        out = _clean(spark, entity, [{c.name: None for c in entity.columns}])
        got = [(f.name, f.dataType) for f in out.select(*entity.silver_column_names).schema]
        assert got == [(f.name, f.dataType) for f in entity.typed_schema]


def test_reviews_rating_range_empty_text_language_and_channel(spark):
    from memberlake.contract import REVIEWS

    out = {r.review_id: r for r in _clean(spark, REVIEWS, [
        {"review_id": "r1", "rating": "5", "body": "  Great\nfit  ", "language": " zh_CN ", "channel": "App",
         "created_at": "2024-01-02 10:00:00", "email": "A@X.com"},
        {"review_id": "r2", "rating": "9", "title": "Meh", "channel": "kiosk"},
        {"review_id": "r3", "rating": "0", "title": " ", "body": "   "},
        {"review_id": "r4", "rating": "four", "title": "Nice"},
    ]).collect()}
    assert (out["r1"].rating, out["r1"].language, out["r1"].channel, out["r1"].email) == (5, "zh-cn", "app", "a@x.com")
    assert out["r1"].body == "Great\nfit" and out["r1"][REASONS] == [] and out["r1"]._flags == []
    assert out["r2"].rating is None and "rating_out_of_range" in out["r2"]._flags      # kept, rating nulled
    assert out["r2"].channel == "other" and "channel_unmapped" in out["r2"]._flags
    assert out["r3"][REASONS] == ["empty_review"]                                       # no words at all
    assert out["r4"].rating is None and "rating_unparseable" in out["r4"]._flags


def test_campaigns_channel_cost_and_dates(spark):
    from memberlake.contract import CAMPAIGNS

    out = {r.campaign_id: r for r in _clean(spark, CAMPAIGNS, [
        {"campaign_id": "c1", "name": " Spring  sale ", "channel": "Direct Mail", "start_at": "2024-03-01 00:00:00",
         "end_at": "2024-03-15 00:00:00", "cost_per_contact": "0.35"},
        {"campaign_id": "c2", "channel": "fax", "start_at": "2024-03-10 00:00:00", "end_at": "2024-03-01 00:00:00"},
        {"campaign_id": "c3", "channel": "sms", "cost_per_contact": "-1"},
    ]).collect()}
    c1 = out["c1"]
    assert (c1.name, c1.channel, float(c1.cost_per_contact), c1.currency) == ("Spring sale", "direct_mail", 0.35, "USD")
    assert c1[REASONS] == [] and c1._flags == []
    assert out["c2"].channel == "other" and {"channel_unmapped", "ends_before_start"} <= set(out["c2"]._flags)
    assert out["c3"][REASONS] == ["negative_cost_per_contact"]


def test_campaign_contacts_control_flag_variant_and_identifiers(spark):
    from memberlake.contract import CAMPAIGN_CONTACTS

    out = {r.member_id: r for r in _clean(spark, CAMPAIGN_CONTACTS, [
        {"campaign_id": "c1", "member_id": "a", "email": " A@X.com ", "variant": "Mens", "is_control": "false",
         "sent_at": "2024-03-01 10:00:00", "opened_at": "2024-03-01 12:00:00"},
        {"campaign_id": "c1", "member_id": "b", "variant": "Control"},                     # no flag: from the name
        {"campaign_id": "c1", "member_id": "c", "is_control": "yes"},                      # no variant: from the flag
        {"campaign_id": "c1", "member_id": "e", "variant": "No  E-Mail"},                  # a control by its name
        {"campaign_id": "c1", "member_id": "d", "is_control": "maybe", "sent_at": "2024-03-01 10:00:00",
         "assigned_at": "2024-03-02 10:00:00"},
    ]).collect()}
    a, b, c, d = out["a"], out["b"], out["c"], out["d"]
    assert (a.variant, a.is_control, a.email, a[REASONS]) == ("Mens", False, "a@x.com", [])
    assert (b.variant, b.is_control) == ("Control", True) and "is_control_from_variant" in b._flags
    assert (c.variant, c.is_control) == ("control", True)
    assert (out["e"].variant, out["e"].is_control) == ("No E-Mail", True)
    assert (d.variant, d.is_control) == ("treatment", False)
    assert {"is_control_unparseable", "sent_before_assigned"} <= set(d._flags)
