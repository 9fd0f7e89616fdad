"""Raw string -> typed value rules shared by ingest and clean."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from memberlake.parsing import blank_to_null, parse_bool, parse_date, parse_int, parse_money, parse_timestamp
from memberlake.settings import LandingSettings

LANDING = LandingSettings(
    timezone="America/New_York",
    null_values=["", "null", "n/a", "-"],
    timestamp_formats=["M/d/yyyy H:mm"],
    date_formats=["M/d/yyyy"],
)


def _apply(spark, values, fn):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    rows = df.select("i", fn(F.col("v")).alias("out")).orderBy("i").collect()
    return [r.out for r in rows]


def test_timestamps_with_offset_are_exact_instants_naive_ones_local(spark):
    values = [
        "2024-03-01T10:00:00Z",          # UTC
        "2024-03-01T10:00:00+02:00",     # offset -> 08:00 UTC
        "2024-03-01T10:00:00+0200",      # compact offset
        "2024-03-01 10:00:00",           # naive, New York (EST, -5) -> 15:00 UTC
        "2024-07-01 10:00:00",           # naive, New York (EDT, -4) -> 14:00 UTC
        "2024-03-01",                    # date only: local midnight -> 05:00 UTC
        "3/1/2024 10:00",                # configured pattern, naive
        "1709287200",                    # epoch seconds = 2024-03-01T10:00:00Z
        "1709287200000",                 # epoch millis
        "yesterday",
        None,
    ]
    got = _apply(spark, values, lambda c: parse_timestamp(blank_to_null(c, LANDING.null_values), LANDING))
    # Spark returns naive datetimes in the session time zone, which is UTC.
    assert got == [
        datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 8), datetime(2024, 3, 1, 8),
        datetime(2024, 3, 1, 15), datetime(2024, 7, 1, 14), datetime(2024, 3, 1, 5),
        datetime(2024, 3, 1, 15), datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 10),
        None, None,
    ]


def test_a_zone_name_after_the_time_makes_an_exact_instant(spark):
    """Exports that write "2019-10-01 00:00:00 UTC" (or a region) mean that instant, whatever
    landing.timezone says; a trailing word Spark does not read as a zone is left to the patterns."""
    values = ["2019-10-01 00:00:00 UTC", "2019-10-01 00:00:00 GMT", "2019-10-01 00:00:00 Europe/Paris",
              "2019-10-01 00:00:00", "10/1/2019 9:30 PM"]
    twelve_hour = LANDING.model_copy(update={"timestamp_formats": ["M/d/yyyy h:mm a"]})
    got = _apply(spark, values, lambda c: parse_timestamp(c, twelve_hour))
    assert got == [datetime(2019, 10, 1), datetime(2019, 10, 1), datetime(2019, 9, 30, 22),
                   datetime(2019, 10, 1, 4), datetime(2019, 10, 2, 1, 30)]


def test_naive_time_in_the_skipped_dst_hour_still_parses(spark):
    # 2024-03-10 02:30 does not exist in New York; Spark moves it forward (07:30 UTC).
    got = _apply(spark, ["2024-03-10 02:30:00"], lambda c: parse_timestamp(c, LANDING))
    assert got == [datetime(2024, 3, 10, 7, 30)]


def test_dates(spark):
    got = _apply(spark, ["1990-02-28", "1990-02-28T00:00:00", "2/28/1990", "1990-02-30", "soon", None],
                 lambda c: parse_date(c, LANDING))
    assert got == [date(1990, 2, 28), date(1990, 2, 28), date(1990, 2, 28), None, None, None]


def test_money_strips_symbols_and_thousands(spark):
    got = _apply(spark, ["12.5", "$1,234.50", " 7 ", "(12.00)", "-3.10", "EUR 9", "abc", None],
                 lambda c: parse_money(c, LANDING))
    assert got == [Decimal("12.50"), Decimal("1234.50"), Decimal("7.00"), Decimal("-12.00"),
                   Decimal("-3.10"), Decimal("9.00"), None, None]


def test_money_with_decimal_comma(spark):
    european = LANDING.model_copy(update={"decimal_comma": True})
    got = _apply(spark, ["1.234,56", "12,5"], lambda c: parse_money(c, european))
    assert got == [Decimal("1234.56"), Decimal("12.50")]


def test_int_accepts_whole_numbers_only(spark):
    got = _apply(spark, ["3", "2.0", "2.5", "-1", "1,000", "x"], lambda c: parse_int(c, LANDING))
    assert got == [3, 2, None, -1, 1000, None]


def test_bool_vocabulary(spark):
    got = _apply(spark, ["yes", "Y", "1", "true", "no", "0", "False", "maybe", None], parse_bool)
    assert got == [True, True, True, True, False, False, False, None, None]


@pytest.mark.parametrize("raw,expected", [("  x ", "x"), ("N/A", None), ("-", None), ("", None), ("null", None), ("0", "0")])
def test_blank_to_null(spark, raw, expected):
    assert _apply(spark, [raw], lambda c: blank_to_null(c, LANDING.null_values)) == [expected]


def test_naive_timestamps_in_utc_are_kept_as_is(spark):
    utc = LandingSettings(timezone="UTC", timestamp_formats=["M/d/yyyy H:mm"])
    got = _apply(spark, ["2024-03-01 10:00:00", "3/1/2024 10:00", "2024-03-01T10:00:00-05:00"],
                 lambda c: parse_timestamp(c, utc))
    assert got == [datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 15)]


def test_plain_numbers_take_the_direct_cast_and_agree_with_the_text_rules(spark):
    # A plain number is cast directly, anything else goes through the symbol-stripping rules;
    # both give the same value (rounded half up to cents), and scientific notation is read as such.
    money = _apply(spark, ["12.345", "+4", "0012", "1e3", "12.345 ", "$12.345"], lambda c: parse_money(c, LANDING))
    assert money == [Decimal("12.35"), Decimal("4.00"), Decimal("12.00"), Decimal("1000.00"),
                     Decimal("12.35"), Decimal("12.35")]
    ints = _apply(spark, ["+4", "0012", "4.0", "2147483648", "4.5"], lambda c: parse_int(c, LANDING))
    assert ints == [4, 12, 4, None, None]
