"""Landing readers on messy files: quoted newlines, BOMs, column order, absent and extra columns."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from memberlake.contract import MEMBERS, ORDER_ITEMS, ORDERS, SOURCE_FILE
from memberlake.io.landing import CORRUPT, list_entity_files, read_entity
from memberlake.jobs.common import check_entities
from memberlake.settings import LandingSettings, SettingsError, load_settings

LANDING = LandingSettings()


def _write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_entity_files_by_folder_and_by_name(spark, tmp_path):
    _write(tmp_path / "members" / "part-1.csv", "member_id\n1\n")
    _write(tmp_path / "members" / "2024" / "part-2.csv.gz", "")
    _write(tmp_path / "members_2024-02.json", "{}\n")
    _write(tmp_path / "members" / "_SUCCESS", "")
    _write(tmp_path / "members" / ".part-1.csv.crc", "")
    _write(tmp_path / "_truth" / "members.csv", "x\n")
    _write(tmp_path / "order_items.csv", "order_id\n")
    files = list_entity_files(spark, str(tmp_path), "members")
    names = sorted(f.path.rsplit("/", 1)[-1] for f in files)
    assert names == ["members_2024-02.json", "part-1.csv", "part-2.csv.gz"]
    assert {f.format for f in files} == {"csv", "json"}
    folder_groups = {f.group for f in files if "/members/" in f.path}
    assert len(folder_groups) == 1  # one folder, one header, one read
    assert list_entity_files(spark, str(tmp_path), "orders") == []
    assert list_entity_files(spark, str(tmp_path / "missing"), "members") == []


def test_csv_quoted_newlines_bom_and_malformed_rows(spark, tmp_path):
    text = ("\ufeffMember_ID , First Name,email\n"
            '1,"Ann\nMarie",a@x.com\n'
            "2,Bob\n"                     # too few fields
            "3,Cy,c@x.com,extra\n"        # too many fields
            '4,"Dee, Jr.",d@x.com\n')
    _write(tmp_path / "members.csv", text)
    files = list_entity_files(spark, str(tmp_path), "members")
    rows = {r.member_id: r for r in read_entity(spark, files, MEMBERS, LANDING).collect()}
    assert rows["1"].first_name == "Ann\nMarie" and rows["1"].email == "a@x.com"
    assert rows["4"].first_name == "Dee, Jr."
    assert rows["1"][CORRUPT] is None and rows["4"][CORRUPT] is None
    assert rows["2"][CORRUPT] == "2,Bob" and rows["3"][CORRUPT] == "3,Cy,c@x.com,extra"
    assert rows["1"].phone is None                       # absent column -> null
    assert rows["1"][SOURCE_FILE].endswith("members.csv")


def test_files_with_different_column_orders_are_aligned_by_name(spark, tmp_path):
    _write(tmp_path / "orders_a.csv", "order_id,order_ts,total_amount\nA,2024-01-01,10\n")
    _write(tmp_path / "orders_b.csv", "total_amount,order_id,order_ts,coupon\n20,B,2024-01-02,XMAS\n")
    files = list_entity_files(spark, str(tmp_path), "orders")
    rows = {r.order_id: r for r in read_entity(spark, files, ORDERS, LANDING).collect()}
    assert (rows["A"].total_amount, rows["B"].total_amount) == ("10", "20")
    assert rows["B"].order_ts == "2024-01-02"


def test_column_map_renames_source_headers(spark, tmp_path):
    _write(tmp_path / "orders.csv", "InvoiceNo,InvoiceDate,CustomerID\n536365,12/1/2010 8:26,17850\n")
    landing = LandingSettings(column_map={"orders": {"order_id": "InvoiceNo", "order_ts": "InvoiceDate",
                                                     "member_id": "CustomerID"}})
    files = list_entity_files(spark, str(tmp_path), "orders")
    row = read_entity(spark, files, ORDERS, landing).first()
    assert (row.order_id, row.order_ts, row.member_id) == ("536365", "12/1/2010 8:26", "17850")


def test_column_map_to_an_unknown_contract_column_is_refused(spark, tmp_path):
    _write(tmp_path / "orders.csv", "InvoiceNo\n1\n")
    landing = LandingSettings(column_map={"orders": {"invoice": "InvoiceNo"}})
    with pytest.raises(SettingsError, match=r"landing\.column_map\.orders: \['invoice'\]"):
        read_entity(spark, list_entity_files(spark, str(tmp_path), "orders"), ORDERS, landing)


def test_column_defaults_fill_a_column_a_file_lacks_and_leave_empty_values_empty(spark, tmp_path):
    """One row per unit sold, no quantity column (as in marketplace exports): the configured
    default fills it; in a file that has the column an empty value stays empty (and is quarantined
    later as a missing required value); a JSON record takes it for a missing or null key."""
    _write(tmp_path / "order_items" / "a.csv", "order_id,order_item_id,price\nO1,1,9.90\n")
    _write(tmp_path / "order_items" / "b.csv", "order_id,line_no,unit_price,quantity\nO2,1,5,\nO3,1,5,3\n")
    _write(tmp_path / "order_items" / "c.jsonl", '{"order_id": "O4", "line_no": "1"}\n'
                                                 '{"order_id": "O5", "line_no": "1", "quantity": null}\n'
                                                 '{"order_id": "O6", "line_no": "1", "quantity": "2"}\n')
    landing = LandingSettings(column_map={"order_items": {"line_no": "order_item_id", "unit_price": "price"}},
                              column_defaults={"order_items": {"quantity": 1, "discount_amount": 0}})
    files = list_entity_files(spark, str(tmp_path), "order_items")
    rows = {r.order_id: r for r in read_entity(spark, files, ORDER_ITEMS, landing).collect()}
    assert (rows["O1"].quantity, rows["O1"].line_no, rows["O1"].unit_price) == ("1", "1", "9.90")
    assert rows["O1"].discount_amount == "0"
    assert rows["O2"].quantity is None and rows["O3"].quantity == "3"
    assert (rows["O4"].quantity, rows["O5"].quantity, rows["O6"].quantity) == ("1", "1", "2")
    assert rows["O2"].discount_amount == "0"          # absent from b.csv too


def test_column_defaults_name_contract_columns_and_entities(spark, tmp_path):
    _write(tmp_path / "order_items.csv", "order_id\n1\n")
    landing = LandingSettings(column_defaults={"order_items": {"qty": 1}})
    with pytest.raises(SettingsError, match=r"landing\.column_defaults\.order_items: \['qty'\]"):
        read_entity(spark, list_entity_files(spark, str(tmp_path), "order_items"), ORDER_ITEMS, landing)
    settings = load_settings("local", ["landing.column_defaults.orderitems.quantity=1"])
    with pytest.raises(SettingsError, match=r"landing\.column_defaults: unknown entities \['orderitems'\]"):
        check_entities(["orders"], settings)


def test_latin1_encoding(spark, tmp_path):
    _write(tmp_path / "members.csv", "member_id,last_name\n1,Müller\n", encoding="latin-1")
    landing = LandingSettings(encoding="ISO-8859-1")
    files = list_entity_files(spark, str(tmp_path), "members")
    assert read_entity(spark, files, MEMBERS, landing).first().last_name == "Müller"


def test_json_lines_and_parquet(spark, tmp_path):
    _write(tmp_path / "orders" / "a.jsonl", '{"order_id": "J1", "total_amount": 12.5, "order_ts": "2024-01-01T00:00:00Z"}\n{bad json\n')
    parquet_dir = tmp_path / "p" / "orders"
    spark.createDataFrame([("P1", datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc))], "order_id string, order_ts timestamp") \
        .write.parquet(str(parquet_dir))
    json_rows = read_entity(spark, list_entity_files(spark, str(tmp_path), "orders"), ORDERS, LANDING).collect()
    good = [r for r in json_rows if r.order_id == "J1"][0]
    assert good.total_amount == "12.5"
    assert sum(1 for r in json_rows if r[CORRUPT] is not None) == 1
    parquet = read_entity(spark, list_entity_files(spark, str(tmp_path / "p"), "orders"), ORDERS, LANDING).first()
    # A Parquet timestamp is an instant: written back with its offset, never re-read as local time.
    assert parquet.order_ts == "2024-01-01T12:00:00.000000Z"


def test_no_files_is_none(spark):
    assert read_entity(spark, [], MEMBERS, LANDING) is None


def test_csv_files_of_one_folder_are_each_aligned_by_their_own_header(spark, tmp_path):
    """Three members files in one folder: the contract's order, the reverse, and eight columns in
    another order. Every row lands in its own columns (issue 25: 10 were shifted, 10 malformed)."""
    full = list(MEMBERS.column_names)
    eight = ["email", "member_id", "last_name", "source", "first_name", "city", "phone", "country"]

    def rows(cols, n0, header=None, extra=""):
        lines = [",".join(header or cols)] + [",".join(f"{c}-{i}" for c in cols) + extra for i in range(n0, n0 + 3)]
        return "\n".join(lines) + "\n"
    _write(tmp_path / "members" / "a.csv", rows(full, 0))
    _write(tmp_path / "members" / "b.csv", rows(list(reversed(full)), 3))
    # other case, and a column outside the contract (ignored)
    _write(tmp_path / "members" / "c.csv", rows(eight, 6, [c.upper() for c in eight] + ["loyalty_tier"], ",gold"))
    _write(tmp_path / "members" / "d.csv", "")                      # empty file: no rows
    _write(tmp_path / "members" / "e.csv", ",".join(eight) + "\n")   # header only: no rows
    files = list_entity_files(spark, str(tmp_path), "members")
    got = read_entity(spark, files, MEMBERS, LANDING).collect()
    assert len(got) == 9 and all(r[CORRUPT] is None for r in got)
    for r in got:
        i = r.member_id.split("-")[1]
        for c in full:
            expected = f"{c}-{i}" if int(i) < 6 or c in eight else None
            assert r[c] == expected, (c, r)


def test_an_entity_of_empty_files_reads_as_no_rows(spark, tmp_path):
    _write(tmp_path / "members" / "d.csv", "")
    got = read_entity(spark, list_entity_files(spark, str(tmp_path), "members"), MEMBERS, LANDING)
    assert got.count() == 0 and set(MEMBERS.column_names) <= set(got.columns)
