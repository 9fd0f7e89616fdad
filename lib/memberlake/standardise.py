"""Column standardisers for silver: text, email, postcode, mapped vocabularies (phones: memberlake.phones).

Each takes a null-normalised string column and returns a column; invalid values become null so
that the caller can flag them (the raw value stays in bronze).
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

EMAIL_PATTERN = r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


def squish(col: Column) -> Column:
    """Trim and collapse inner whitespace (tabs, newlines, non-breaking spaces) to one space."""
    return F.trim(F.regexp_replace(col, r"[\s\u00a0]+", " "))


def name_case(col: Column) -> Column:
    """``  jOHN  o'neil`` -> ``John O'neil``: one case rule for all names, cities, streets."""
    return F.initcap(F.lower(squish(col)))


def email(col: Column) -> Column:
    """Lower-cased, whitespace and a ``mailto:`` prefix removed; null unless it looks valid."""
    value = F.regexp_replace(F.lower(F.regexp_replace(col, r"\s+", "")), r"^mailto:", "")
    return F.when(value.rlike(EMAIL_PATTERN) & ~value.contains(".."), value)


def postcode(col: Column, country: Column) -> Column:
    """Upper-case with separators collapsed. US ZIPs become 5 digits (ZIP+4 cut, and zero-padded
    because spreadsheets drop leading zeros); GB and CA codes get one space before the 3-character
    inward part; others keep their single-spaced form."""
    plain = F.trim(F.regexp_replace(F.upper(F.regexp_replace(col, r"[^0-9A-Za-z]+", " ")), r"\s+", " "))
    compact = F.regexp_replace(plain, " ", "")
    us_zip = (
        F.when(compact.rlike(r"^\d{9}$"), F.substring(compact, 1, 5))
        .when(compact.rlike(r"^\d{3,5}$"), F.lpad(compact, 5, "0"))
    )
    outward = F.substring(compact, F.lit(1), F.length(compact) - 3)
    inward = F.substring(compact, F.length(compact) - 2, F.lit(3))
    gb_ca = F.when(F.length(compact) > 3, F.concat_ws(" ", outward, inward)).otherwise(compact)
    return (
        F.when(plain == "", None)
        .when(country == "US", F.coalesce(us_zip, plain))
        .when(country.isin("GB", "CA"), gb_ca)
        .otherwise(plain)
    )


def mapped(col: Column, mapping: dict[str, str], default: str | None = None) -> Column:
    """Look the lower-cased value up in ``mapping``. Unmapped values are kept (lower-cased);
    nulls become ``default``."""
    key = F.lower(squish(col))
    value = key
    if mapping:
        lookup = F.create_map(*[F.lit(x) for k, v in mapping.items() for x in (k.lower(), v)])
        value = F.coalesce(F.try_element_at(lookup, key), key)
    return F.coalesce(value, F.lit(default)) if default is not None else value


def country(col: Column, country_map: dict[str, str], default_country: str) -> Column:
    """An ISO country code: the value mapped by ``country_map`` and upper-cased, else the default.
    (clean's member country, and the country forget reads a stored phone in.)"""
    return F.coalesce(F.upper(mapped(col, country_map)), F.lit(default_country))
