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
    df = spark.createDataFrame([(v,) for v in VALUES], "v string")
    got = [r.h for r in df.select(hmac_sha256(F.col("v"), key).alias("h")).collect()]
    want = [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() if v is not None else None for v in VALUES]
    assert got == want


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
