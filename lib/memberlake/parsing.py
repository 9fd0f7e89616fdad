"""Column expressions that turn raw landing strings into typed values, null when they do not parse.

Shared by ingest (to decide what is quarantined) and clean (to type silver), so both agree on
what "parses" means. All are built-in Spark expressions: nothing leaves the JVM.
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from memberlake.contract import MONEY, Kind
from memberlake.settings import LandingSettings

_TRUE = ["true", "t", "yes", "y", "1", "on", "opt-in", "optin", "subscribed"]
_FALSE = ["false", "f", "no", "n", "0", "off", "opt-out", "optout", "unsubscribed"]


def blank_to_null(col: Column, null_values: list[str]) -> Column:
    """Trimmed value, or null when it is empty or one of the configured null tokens."""
    trimmed = F.trim(col)
    tokens = [v.lower() for v in null_values] or [""]
    return F.when(trimmed.isNull() | F.lower(trimmed).isin(tokens) | (trimmed == ""), None).otherwise(trimmed)


def parse_timestamp(col: Column, landing: LandingSettings) -> Column:
    """ISO-8601 with or without offset, epoch seconds/millis, or a configured pattern -> UTC.

    Values carrying an offset (``Z``, ``+02:00``, ``+0200``) or a zone name Spark knows (``2019-10-01
    00:00:00 UTC``, ``… America/New_York``, as some exports write them) are exact instants; naive
    values are wall-clock time in ``landing.timezone``. The session time zone is UTC. The common
    case (ISO text Spark casts directly) costs one cast and one pattern test; the rest is tried
    only when that fails.
    """
    has_zone = col.contains(":") & col.rlike(r"(([zZ]|[+-]\d{2}:?\d{2})|\s[A-Za-z][A-Za-z0-9_/+-]*)$")
    iso = F.when(col.rlike(r"^\d{4}-\d{1,2}-\d{1,2}"), col.try_cast("timestamp"))
    compact = F.regexp_replace(col, r"([+-]\d{2})(\d{2})$", "$1:$2").try_cast("timestamp")
    exact = F.coalesce(iso, compact)
    epoch = (F.when(col.rlike(r"^\d{13}$"), F.timestamp_millis(col.try_cast("long")))
             .when(col.rlike(r"^\d{9,10}(\.\d+)?$"), F.timestamp_seconds(col.try_cast("double"))))
    patterns = [F.try_to_timestamp(col, F.lit(p)) for p in landing.timestamp_formats]
    naive = F.coalesce(*patterns) if patterns else F.lit(None).cast("timestamp")
    local = (lambda ts: ts) if landing.timezone.upper() in ("UTC", "Z", "ETC/UTC") else (
        lambda ts: F.to_utc_timestamp(ts, landing.timezone))
    return (
        F.when(has_zone & exact.isNotNull(), exact)   # else a pattern may still read it
        .when(iso.isNotNull(), local(iso))
        .when(epoch.isNotNull(), epoch)
        .otherwise(local(naive))
    )


def parse_date(col: Column, landing: LandingSettings) -> Column:
    """ISO dates (a time part is ignored) or a configured pattern."""
    iso = F.when(col.rlike(r"^\d{4}-\d{1,2}-\d{1,2}([T\s].*)?$"),
                 F.substring_index(F.regexp_replace(col, "T", " "), " ", 1).try_cast("date"))
    patterns = [F.to_date(F.try_to_timestamp(col, F.lit(p))) for p in landing.date_formats]
    return F.coalesce(iso, *patterns) if patterns else iso


def _numeric_text(col: Column, decimal_comma: bool) -> Column:
    """Drop currency symbols, spaces and thousands separators; keep sign, digits and point."""
    s = F.regexp_replace(col, r"[^0-9,.+\-()]", "")
    s = F.when(s.rlike(r"^\(.*\)$"), F.concat(F.lit("-"), F.regexp_replace(s, r"[()]", ""))).otherwise(s)
    if decimal_comma:
        return F.regexp_replace(F.regexp_replace(s, r"\.", ""), ",", ".")
    return F.regexp_replace(s, ",", "")


def parse_money(col: Column, landing: LandingSettings) -> Column:
    """Amounts with currency symbols, thousands separators or accounting brackets. A plain number
    is cast directly; the regular expressions run only on values the cast refuses (they cost
    more than the rest of a row's parsing). With ``decimal_comma`` every value takes the slow
    path: ``1.234`` means 1234 there."""
    slow = _numeric_text(col, landing.decimal_comma).try_cast(MONEY)
    return slow if landing.decimal_comma else F.coalesce(col.try_cast(MONEY), slow)


def parse_int(col: Column, landing: LandingSettings) -> Column:
    """Whole numbers, also written as ``2.0`` or ``1,000``; ``2.5`` does not parse. A plain
    integer is cast directly (the cast refuses ``2.0``, ``2.5`` and separators)."""
    number = _numeric_text(col, landing.decimal_comma).try_cast("decimal(38,6)")
    return F.coalesce(col.try_cast("int"), F.when(number == F.floor(number), number.try_cast("int")))


def parse_bool(col: Column) -> Column:
    lowered = F.lower(col)
    return F.when(lowered.isin(_TRUE), F.lit(True)).when(lowered.isin(_FALSE), F.lit(False))


def parse(col: Column, kind: Kind, landing: LandingSettings) -> Column:
    """Typed value of a (null-normalised) raw column; null when absent or unparseable."""
    if kind == "timestamp":
        return parse_timestamp(col, landing)
    if kind == "date":
        return parse_date(col, landing)
    if kind == "money":
        return parse_money(col, landing)
    if kind == "int":
        return parse_int(col, landing)
    if kind == "bool":
        return parse_bool(col)
    return col
