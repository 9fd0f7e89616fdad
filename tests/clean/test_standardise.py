"""Column standardisers: hand-written expectations per rule."""
from __future__ import annotations

from pyspark.sql import functions as F

from memberlake import standardise as S


def _apply(spark, values, fn):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    return [r.out for r in df.select("i", fn(F.col("v")).alias("out")).orderBy("i").collect()]


def test_email_lowercased_trimmed_and_validated(spark):
    got = _apply(spark, [" John.Doe@Example.COM ", "mailto:a@b.io", "a@b", "no-at.example.com",
                         "x..y@example.com", "o'neil+tag@mail.co.uk", None], S.email)
    assert got == ["john.doe@example.com", "a@b.io", None, None, None, "o'neil+tag@mail.co.uk", None]


def test_phone_e164_nanp(spark):
    us = lambda c: S.phone_e164(c, "1", [10], "1")  # noqa: E731
    got = _apply(spark, ["(212) 555-0100", "212.555.0100", "1-212-555-0100", "+1 212 555 0100",
                         "2125550100 x42", "+44 20 7946 0958", "0044 20 7946 0958", "555-0100", "abc", None], us)
    assert got == ["+12125550100"] * 5 + ["+442079460958", "+442079460958", None, None, None]


def test_phone_e164_with_trunk_zero(spark):
    gb = lambda c: S.phone_e164(c, "44", [10], "0")  # noqa: E731
    got = _apply(spark, ["020 7946 0958", "2079460958", "442079460958", "+1 212 555 0100", "07946"], gb)
    assert got == ["+442079460958", "+442079460958", "+442079460958", "+12125550100", None]


def test_postcodes_by_country(spark):
    df = spark.createDataFrame(
        [(1, "2134", "US"), (2, "02134-1234", "US"), (3, " 90210 ", "US"), (4, "sw1a1aa", "GB"),
         (5, "K1A 0B1", "CA"), (6, "10115", "DE"), (7, "  ", "US"), (8, None, "US")],
        "i int, v string, country string")
    got = [r.out for r in df.select("i", S.postcode(F.col("v"), F.col("country")).alias("out")).orderBy("i").collect()]
    assert got == ["02134", "02134", "90210", "SW1A 1AA", "K1A 0B1", "10115", None, None]


def test_name_case_and_squish(spark):
    assert _apply(spark, ["  jOHN\t  o'neil ", "MARY-ANN", None], S.name_case) == ["John O'neil", "Mary-ann", None]


def test_mapped_vocabulary(spark):
    mapping = {"m": "male", "Female": "female"}
    got = _apply(spark, ["M", " female ", "robot", None], lambda c: S.mapped(c, mapping, default="unknown"))
    assert got == ["male", "female", "robot", "unknown"]
