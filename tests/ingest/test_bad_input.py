"""Messy landing files, kept as data in tests/data/bad_input (made by its make.py): every landing
row ends in bronze or in quarantine with its reasons, none is lost or shifted (issue 25)."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from memberlake import cli
from memberlake.io.delta import Lakehouse

DATA = Path(__file__).resolve().parents[1] / "data" / "bad_input"
# file (relative to the landing folder) -> rows it holds, by hand: {key: reasons or None (accepted)}
EXPECTED = {
    "members/latin1/crm_export.csv": {"L1": None, "L2": None, None: ["missing:member_id"]},
    "members/bom_crlf.csv": {"B1": None, "B2": None},
    "members/empty.csv": {},
    "members/header_only.csv": {},
    "members/big_field.csv.gz": {"G1": None, "G2": None},
    "members/parquet/a.parquet": {"101": None, "102": None},
    "members/parquet/b.parquet": {"P-103": None, None: ["missing:member_id"]},
    "orders/orders.jsonl": {"J1": None, "J3": None, "J2": ["malformed_row", "missing:order_id", "missing:order_ts"], "J4": ["unparseable:order_ts"]},
}


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    landing, lakehouse = root / "landing", root / "lake"
    shutil.copytree(DATA, landing, ignore=shutil.ignore_patterns("*.py"))
    assert cli.main(["ingest", "--landing", str(landing), "--lakehouse", str(lakehouse),
                     "--entities", "members,orders"]) == 0
    return landing, Lakehouse(str(lakehouse))


def _file(path: str, landing: Path) -> str:
    return str(Path(path.replace("file:", "")).relative_to(landing))


def test_every_landing_row_is_in_bronze_or_quarantine_with_its_reasons(spark, ingested):
    landing, lake = ingested
    got: dict[str, Counter] = {f: Counter() for f in EXPECTED}
    for entity, key in (("members", "member_id"), ("orders", "order_id")):
        for r in lake.read(f"bronze_{entity}").select(key, "_source_file").collect():
            got[_file(r._source_file, landing)][(r[key], None)] += 1
    quarantine = lake.read("quarantine").select(
        F.coalesce(F.get_json_object("raw_record", "$.member_id"), F.get_json_object("raw_record", "$.order_id"),
                   F.regexp_extract(F.get_json_object("raw_record", "$._corrupt_record"), r'"order_id": "(\w+)"', 1))
        .alias("key"), "reasons", "_source_file").collect()
    for r in quarantine:
        got[_file(r._source_file, landing)][(r.key or None, tuple(r.reasons))] += 1
    expected = {f: Counter({(k, tuple(v) if v else None): 1 for k, v in rows.items()}) for f, rows in EXPECTED.items()}
    assert got == expected


def test_values_arrive_whole_decoded_and_in_their_columns(spark, ingested):
    _, lake = ingested
    rows = {r.member_id: r for r in lake.read("bronze_members").collect()}
    assert (rows["L1"].first_name, rows["L1"].last_name, rows["L1"].city) == ("Zoë", "Müller", "Köln")   # Latin-1
    assert (rows["L2"].first_name, rows["L2"].city) == ("François", "Besançon")
    # CRLF line ends leave no \r behind; a quoted line break stays one (Spark's CSV parser
    # normalises it to \n)
    assert rows["B1"].city == "San\nFrancisco" and rows["B2"].city == "Oakland"
    assert rows["B1"].member_id == "B1" and rows["B1"].phone == "+1 415 555 0100"       # BOM not in the data
    assert len(rows["G1"].city) == 1024 * 1024 and rows["G2"].city == "Reno"            # a 1 MB field
    assert (rows["101"].source, rows["P-103"].birth_date) == ("app", "1999-09-09")     # int64 and string ids
    orders = {r.order_id: r for r in lake.read("bronze_orders").collect()}
    assert orders["J3"].total_amount == "7" and orders["J1"].total_amount == "12.50"
