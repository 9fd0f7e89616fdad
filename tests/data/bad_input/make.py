"""Writes the bad-input landing files kept beside it (run once; the files are committed).

Each file's rows and what should become of them are listed in EXPECTED (tests/ingest/test_bad_input.py).
"""
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

here = Path(__file__).parent
HEADER = "member_id,source,first_name,last_name,email,phone,birth_date,city\n"

# Latin-1: accented names; one row without a member id (quarantined: missing:member_id)
(here / "members" / "latin1").mkdir(parents=True, exist_ok=True)
(here / "members" / "latin1" / "crm_export.csv").write_bytes(
    (HEADER + "L1,crm,Zoë,Müller,zoe@x.com,,1980-02-03,Köln\n"
     "L2,crm,François,Ñúñez,fr@x.com,,1975-12-01,Besançon\n"
     ",crm,Åsa,Ölund,asa@x.com,,1990-01-01,Malmö\n").encode("latin-1"))
# UTF-8 with a byte-order mark and CRLF line ends; a quoted field with a CRLF inside
(here / "members" / "bom_crlf.csv").write_bytes(
    ("\ufeff" + HEADER.replace("\n", "\r\n")
     + "B1,web,Ann,Lee,ann@x.com,+1 415 555 0100,1988-08-08,\"San\r\nFrancisco\"\r\n"
     + "B2,web,Bo,Kim,bo@x.com,,not-a-date,Oakland\r\n").encode("utf-8"))
# empty file and header-only file: no rows
(here / "members" / "empty.csv").write_bytes(b"")
(here / "members" / "header_only.csv").write_bytes(HEADER.encode())
# a 1 MB field (kept gzipped): the row is accepted whole
big = "x" * (1024 * 1024)
with gzip.open(here / "members" / "big_field.csv.gz", "wb") as f:
    f.write((HEADER + f"G1,web,Big,Field,big@x.com,,1970-01-01,{big}\nG2,web,Small,Field,small@x.com,,,Reno\n").encode())
# JSON lines with a broken line between good ones
(here / "orders").mkdir(exist_ok=True)
(here / "orders" / "orders.jsonl").write_text(
    '{"order_id": "J1", "member_id": "B1", "order_ts": "2024-03-01T10:00:00Z", "total_amount": "12.50"}\n'
    '{"order_id": "J2", "member_id": "B2", "order_ts": "2024-03-02T10:00:00Z", "total_amount": \n'
    '{"order_id": "J3", "member_id": "L1", "order_ts": "2024-03-03T10:00:00Z", "total_amount": 7}\n'
    '{"order_id": "J4", "order_ts": "not a time", "total_amount": "1.00"}\n', encoding="utf-8")
# Parquet files of one entity whose column types differ: member_id int64 in one, string in the other
(here / "members" / "parquet").mkdir(exist_ok=True)
pq.write_table(pa.table({"member_id": pa.array([101, 102], pa.int64()), "source": ["app", "app"],
                         "birth_date": pa.array([None, None], pa.date32())}), here / "members" / "parquet" / "a.parquet")
pq.write_table(pa.table({"member_id": ["P-103", None], "source": ["app", "app"],
                         "birth_date": ["1999-09-09", "1999-09-10"]}), here / "members" / "parquet" / "b.parquet")
