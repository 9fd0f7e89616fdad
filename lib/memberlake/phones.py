"""Phone numbers parsed with each row's own country, by Google's numbering plans (``phonenumbers``).

Hand-written rules for one configured country turned a member abroad's number into a wrong or
no E.164 number and passed any 8-15 digits after ``+``. Here each number is parsed with its
row's country (the member's ``country``; ``clean.default_country`` when a row has none, as
orders do) by the ``phonenumbers`` port of libphonenumber, which carries every country's
numbering plan. Spark has no such parser, so it runs in a pandas UDF, vectorised per batch,
with a per-worker cache (an order's phone repeats on every order of that member).

What a number becomes:
- ``e164``: ``+<country code><national number>`` when the number has a possible length for its
  country (libphonenumber's ``is_possible_number``, a local-only length not counted), else null
  (``phone_invalid``);
- ``valid``: it is an assigned number in the country's plan (``is_valid_number``); a possible but
  unassigned one keeps its E.164 value and is flagged ``phone_unassigned``;
- ``phone_type``: ``mobile``, ``fixed_line``, ``fixed_line_or_mobile`` (plans such as NANP do not
  tell them apart), ``toll_free``, ``premium_rate``, ``shared_cost``, ``voip``,
  ``personal_number``, ``pager``, ``uan``, ``voicemail``, or ``unknown``.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

PHONE_INFO = T.StructType([
    T.StructField("e164", T.StringType()),
    T.StructField("valid", T.BooleanType()),
    T.StructField("phone_type", T.StringType()),
])


@lru_cache(maxsize=1)
def _types() -> dict[int, str]:
    from phonenumbers import PhoneNumberType

    return {getattr(PhoneNumberType, name): name.lower() for name in dir(PhoneNumberType) if name.isupper()}


@lru_cache(maxsize=200_000)
def parse_phone(raw: str, region: str) -> tuple[str | None, bool | None, str | None]:
    """(E.164 or None, valid, type) of one number read in ``region`` (ISO 3166 alpha-2)."""
    import phonenumbers as pn

    try:
        number = pn.parse(raw, region if region in pn.SUPPORTED_REGIONS else None)
    except pn.NumberParseException:
        return None, None, None
    # a possible length for a whole number (a local-only length lacks the area code: not E.164)
    if pn.is_possible_number_with_reason(number) != pn.ValidationResult.IS_POSSIBLE:
        return None, None, None
    # ``is_valid_number`` is ``number_type(n) != UNKNOWN`` for the region the number's own
    # country code points at; asking both ran the type patterns (and, for shared country codes
    # such as NANP's +1, the search for the region) twice per number.
    number_type = pn.number_type(number)
    kind = _types().get(number_type, "unknown")
    valid = number_type != pn.PhoneNumberType.UNKNOWN
    return pn.format_number(number, pn.PhoneNumberFormat.E164), valid, kind


def _parser(fallback: str | None):
    def parse(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
        import phonenumbers as pn

        rows = [parse_phone(r, g if g in pn.SUPPORTED_REGIONS else fallback) if isinstance(r, str)
                else (None, None, None) for r, g in zip(raw, region, strict=True)]
        return pd.DataFrame(rows, columns=["e164", "valid", "phone_type"])
    return parse


def phone_info(raw: Column, region: Column, fallback: str | None = None) -> Column:
    """struct(e164, valid, phone_type) of a raw phone column read in each row's ``region``, or in
    ``fallback`` where that is no ISO country code a numbering plan exists for."""
    parse = F.pandas_udf(_parser(fallback), PHONE_INFO)   # an extension (x12, ext. 12) is parsed off
    return parse(raw, F.upper(F.trim(region)))
