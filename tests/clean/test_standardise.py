"""Column standardisers: hand-written expectations per rule."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from memberlake import standardise as S


def _apply(spark, values, fn):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    return [r.out for r in df.select("i", fn(F.col("v")).alias("out")).orderBy("i").collect()]


def test_email_lowercased_trimmed_and_validated(spark):
    got = _apply(spark, [" John.Doe@Example.COM ", "mailto:a@b.io", "a@b", "no-at.example.com",
                         "x..y@example.com", "o'neil+tag@mail.co.uk", None], S.email)
    assert got == ["john.doe@example.com", "a@b.io", None, None, None, "o'neil+tag@mail.co.uk", None]


@pytest.mark.parametrize("raw, region, expected", [
    ("(212) 555-0100", "US", ("+12125550100", True, "fixed_line_or_mobile")),
    ("1-212-555-0100 x42", "US", ("+12125550100", True, "fixed_line_or_mobile")),   # trunk 1, extension
    ("+44 20 7946 0958", "US", ("+442079460958", True, "fixed_line")),        # international wins
    ("0044 20 7946 0958", "DE", ("+442079460958", True, "fixed_line")),
    ("07911 123456", "GB", ("+447911123456", True, "mobile")),                # UK, trunk 0
    ("020 7946 0958", "GB", ("+442079460958", True, "fixed_line")),
    ("138 0013 8000", "CN", ("+8613800138000", True, "mobile")),              # +86 mobile
    ("+86 10 6552 9988", "US", ("+861065529988", True, "fixed_line")),
    ("06 12 34 56 78", "FR", ("+33612345678", True, "mobile")),
    ("212 555 0100", "GB", ("+442125550100", False, "unknown")),   # read as British: possible, unassigned
    ("+1 123 456 7890", "US", ("+11234567890", False, "unknown")),   # possible length, not assigned
    ("+99 12345678", "US", (None, None, None)),         # no such country code
    ("555-0100", "US", (None, None, None)),
    ("abc", "US", (None, None, None)),
    ("0000000000", "US", ("+10000000000", False, "unknown")),    # a placeholder: the identity guards block it
])
def test_phones_are_read_with_each_rows_country(spark, raw, region, expected):
    from memberlake.phones import parse_phone, phone_info

    assert parse_phone(raw, region) == expected
    df = spark.createDataFrame([(raw, region), (None, region)], "raw string, region string")
    got = [tuple(r.p) for r in df.select(phone_info(F.col("raw"), F.col("region")).alias("p")).collect()]
    assert got == [expected, (None, None, None)]


def test_phone_validity_is_libphonenumbers_own_verdict():
    """``valid`` comes from the number's type (one pass over the type patterns instead of two);
    it must agree with ``is_valid_number`` everywhere: every region's example number of every
    type, the non-geographic codes, and random digit strings read in each region."""
    import random

    import phonenumbers as pn

    from memberlake.phones import parse_phone

    rng = random.Random(7)
    cases = []
    for region in sorted(pn.SUPPORTED_REGIONS):
        for kind in (pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.TOLL_FREE,
                     pn.PhoneNumberType.PREMIUM_RATE, pn.PhoneNumberType.VOIP):
            example = pn.example_number_for_type(region, kind)
            if example is not None:
                cases.append((pn.format_number(example, pn.PhoneNumberFormat.E164), region))
        cases += [("".join(rng.choice("0123456789") for _ in range(rng.randint(6, 12))), region) for _ in range(3)]
    cases += [("+800 1234 5678", "US"), ("+882 3421 2345", "GB"), ("+979 123 456 789", "FR")]
    checked = 0
    for raw, region in cases:
        e164, valid, _ = parse_phone(raw, region)
        if e164 is not None:
            assert valid == pn.is_valid_number(pn.parse(raw, region)), (raw, region)
            checked += 1
    assert checked > 1000


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
