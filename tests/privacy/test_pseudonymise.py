"""Keyed hashes equal RFC 2104 HMAC-SHA-256; masks, key resolution and PII columns."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from pyspark.sql import functions as F

from memberlake.privacy.pseudonymise import DEVELOPMENT_KEY, Pseudonymiser, hmac_sha256, masked, resolve_key
from memberlake.settings import PrivacySettings, SettingsError

VALUES = ["jane.doe@example.com", "+14155550123", "Zoë Ångström", "", None]


@pytest.mark.parametrize("key", [b"k", b"s3cret-key", b"x" * 64, b"a much longer key " * 8])
def test_hmac_in_the_jvm_equals_pythons_hmac(spark, key):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(VALUES)], "i int, v string")
    got = [r.h for r in hmac_sha256(df, key, {"h": F.col("v")}).orderBy("i").collect()]
    want = [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() if v is not None else None for v in VALUES]
    assert got == want


def _key_material(key: bytes) -> list[str]:
    """Every printable form of the key and its HMAC pads a plan or a log could carry."""
    import base64

    padded = key.ljust(64, b"\0")
    forms = []
    for raw in (key, bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)):
        forms += [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), ", ".join(str(b) for b in raw[:16])]
    return forms


def test_no_key_material_in_the_query_plans(spark):
    key = b"plan-probe-key-0123456789"
    p = Pseudonymiser(key, ("email", "phone"))
    df = spark.createDataFrame([("P1", "a@b.com", "+1555")], "person_id string, email string, phone string")
    edges = spark.createDataFrame([("email", "a@b.com", "member", "web:1")],
                                  "src_type string, src_value string, dst_type string, dst_value string")
    import io
    from contextlib import redirect_stdout

    text = io.StringIO()
    with redirect_stdout(text):
        for out in (p.table(df), p.nodes(edges, "src_type", "src_value"), p.edges(edges)):
            out.explain("extended")
            out.explain("formatted")
            out.explain("codegen")
    plans = text.getvalue()
    assert "sha2" in plans                                  # the hashing is in the plan...
    assert [f for f in _key_material(key) if f in plans] == []   # ...its key is not


PROBE = """
import glob, os, sys
from pyspark.sql import SparkSession, functions as F
from memberlake.privacy.forget import Footprint, clear_contacts
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import load_settings
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.eventLog.enabled", "true").config("spark.eventLog.compress", "false")
         .config("spark.eventLog.dir", sys.argv[1]).getOrCreate())
p = Pseudonymiser(sys.argv[2].encode(), ("email", "phone"))
df = spark.createDataFrame([("P1", "a@b.com", "+15550001111")], "person_id string, email string, phone string")
p.table(df).collect()
p.edges(spark.createDataFrame([("email", "a@b.com", "member", "web:1")],
                              "src_type string, src_value string, dst_type string, dst_value string")).collect()
fp = Footprint(emails={p.table(df).first().email})
clear_contacts(df, fp, p, load_settings("local").clean)
assert fp.clear_emails == {"a@b.com"}, fp
spark.stop()
"""


@pytest.mark.extended   # starts a second Spark application (~20 s)
def test_no_key_material_in_the_event_log(tmp_path):
    """A Spark application that pseudonymises (tables, graph edges, forget's look-up of contacts in
    the clear) with event logging on: its event log (plans, SQL tab, configs) holds no form of the
    key or its pads."""
    import os
    import subprocess
    import sys

    key = "event-log-probe-key-98765"
    logs = tmp_path / "events"
    logs.mkdir()
    result = subprocess.run([sys.executable, "-c", PROBE, str(logs), key], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYSPARK_SUBMIT_ARGS": "pyspark-shell"})
    assert result.returncode == 0, result.stderr[-3000:]
    text = "".join(f.read_text(errors="replace") for f in logs.rglob("*") if f.is_file())
    assert "SparkListenerSQLExecutionStart" in text and "sha2" in text
    assert [f for f in _key_material(key.encode()) if f in text] == []


def test_pseudonymiser_hashes_pii_columns_and_keeps_the_birth_year(spark):
    p = Pseudonymiser(b"key", ("email", "phone", "first_name"))
    df = spark.createDataFrame([("P1", "a@b.com", None, "Ann", date(1990, 7, 14), "Paris")],
                               "person_id string, email string, phone string, first_name string, birth_date date, city string")
    row = p.table(df).first()
    assert row.email == hmac.new(b"key", b"a@b.com", hashlib.sha256).hexdigest()
    assert row.phone is None
    assert row.first_name == hmac.new(b"key", b"Ann", hashlib.sha256).hexdigest()
    assert row.birth_date == date(1990, 1, 1)
    assert (row.person_id, row.city) == ("P1", "Paris")


def test_only_pii_node_types_are_hashed(spark):
    p = Pseudonymiser(b"key", ("email",))  # phone not listed: phone nodes stay as they are
    df = spark.createDataFrame([("email", "a@b.com"), ("phone", "+1555"), ("cookie", "c1")], "id_type string, value string")
    got = {r.id_type: r.value for r in p.nodes(df).collect()}
    assert got == {"email": hmac.new(b"key", b"a@b.com", hashlib.sha256).hexdigest(), "phone": "+1555", "cookie": "c1"}


def test_masks_show_only_what_an_analyst_needs(spark):
    df = spark.createDataFrame(
        [("jane.doe@example.com", "+1 (415) 555-0123", "Jane", "1 Main St", "Paris",
          '{"email":"jane@x.com","phone":"+1 415","city":"Paris","note":"a \\"quoted\\" value"}'),
         (None, None, None, None, None, None)],
        "email string, phone string, first_name string, street string, city string, raw_record string")
    rows = masked(df, ["email", "phone", "first_name", "street"]).collect()
    assert (rows[0].email, rows[0].phone, rows[0].first_name, rows[0].street, rows[0].city) == (
        "j***@example.com", "***0123", "J***", "***", "Paris")
    assert rows[0].raw_record == '{"email":"***","phone":"***","city":"Paris","note":"a \\"quoted\\" value"}'
    assert all(v is None for v in rows[1])


def test_key_comes_from_the_environment_and_is_never_printed(monkeypatch):
    monkeypatch.setenv("MY_PII_KEY", "from-env")
    cfg = PrivacySettings(key_env="MY_PII_KEY", require_key=True)
    assert resolve_key(cfg) == b"from-env"
    assert "from-env" not in repr(Pseudonymiser(resolve_key(cfg), ("email",)))


def test_missing_key_fails_fast_naming_the_variable_unless_allowed(monkeypatch):
    monkeypatch.delenv("MY_PII_KEY", raising=False)
    with pytest.raises(SettingsError, match="MY_PII_KEY"):
        resolve_key(PrivacySettings(key_env="MY_PII_KEY", require_key=True))
    assert resolve_key(PrivacySettings(key_env="MY_PII_KEY", require_key=False)) == DEVELOPMENT_KEY


def test_mask_text_hides_addresses_links_and_long_numbers(spark):
    from memberlake.exprs import mask_text

    df = spark.createDataFrame([("Mail me at jo.smith+x@mail.co.uk or call 07700 900123, order 12345678.",),
                                ("see https://shop.example/p?id=1 now",), ("Size 42 fits",), (None,), ("x" * 250,)],
                               "t string")
    got = [r[0] for r in df.select(mask_text(F.col("t"))).collect()]
    assert got[0] == "Mail me at ***@*** or call ***, order ***."
    assert got[1] == "see *** now" and got[2] == "Size 42 fits" and got[3] is None
    assert got[4] == "x" * 200 + "…"
    exported = masked(df.select(F.col("t").alias("body")), ["email"]).collect()   # export of silver_reviews
    assert exported[0].body == got[0] and exported[4].body == "x" * 250
