"""Reviewer labels of member-record pairs (match / non-match), the ground truth a real lakehouse has.

A reviewer exports candidate pairs near the threshold (``memberlake export match_pairs --where
"match_probability BETWEEN 0.5 AND 0.999"``), marks each one, and loads the file with
``memberlake label``. ``evaluate identity --labels`` then gives precision and recall at every
threshold from those pairs (:func:`memberlake.thresholds.labelled_thresholds`).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.errors import InputError
from memberlake.exprs import member_node

MATCH = {"true", "1", "yes", "y", "match", "same"}
NON_MATCH = {"false", "0", "no", "n", "non-match", "nonmatch", "no_match", "no-match", "different"}
LABEL_COLUMNS = ["l_record", "r_record", "match", "labelled_by", "labelled_at"]


def _record(df: DataFrame, side: str) -> Column:
    if f"{side}_record" in df.columns:
        return F.nullif(F.trim(F.col(f"{side}_record")), F.lit(""))
    return F.when(F.trim(F.col(f"{side}_member_id")) != "",
                  member_node(F.trim(F.col(f"{side}_source")), F.trim(F.col(f"{side}_member_id"))))


def labels_from_file(raw: DataFrame, labelled_by: str | None) -> DataFrame:
    """A reviewer's file (all columns strings) as ``identity_labels`` rows, one per pair.

    The pair is named by ``l_record``/``r_record`` (``source:member_id``, as ``match_pairs`` has
    them) or by ``l_source``, ``l_member_id``, ``r_source``, ``r_member_id``; ``match`` is
    true/false, yes/no, 1/0 or match/non-match. The two records are put in order, so a pair
    labelled twice, either way round, keeps its last label. A row that names no pair or no verdict
    fails the load with its line, as a reviewer's file is small and must be fixed, not thinned.
    """
    cols = {c: c.strip().lower() for c in raw.columns}
    df = raw.select([F.col(f"`{c}`").alias(n) for c, n in cols.items()])
    named = {"l_record", "r_record"} <= set(df.columns) or {
        "l_source", "l_member_id", "r_source", "r_member_id"} <= set(df.columns)
    if not named or "match" not in df.columns:
        raise InputError("label: the file needs a header with match and either l_record, r_record or l_source, "
                         f"l_member_id, r_source, r_member_id (found: {', '.join(df.columns) or 'no columns'})")
    verdict = F.lower(F.trim(F.col("match")))
    match = (F.when(verdict.isin(*MATCH), F.lit(True)).when(verdict.isin(*NON_MATCH), F.lit(False))
             .otherwise(F.lit(None).cast("boolean")))
    rows = df.select(F.monotonically_increasing_id().alias("_line"), _record(df, "l").alias("a"),
                     _record(df, "r").alias("b"), match.alias("match"), F.col("match").alias("_verdict"))
    bad = rows.where(F.col("a").isNull() | F.col("b").isNull() | (F.col("a") == F.col("b"))
                     | F.col("match").isNull())
    first = bad.orderBy("_line").select("a", "b", "_verdict").first()
    if first is not None:
        raise InputError(f"label: {bad.count()} row(s) name no pair of two records or no verdict, e.g. "
                         f"({first['a']}, {first['b']}, match={first['_verdict']!r}); fix the file "
                         f"(match is one of: {', '.join(sorted(MATCH | NON_MATCH))})")
    ordered = rows.select(F.least("a", "b").alias("l_record"), F.greatest("a", "b").alias("r_record"), "match",
                          "_line")
    last = ordered.groupBy("l_record", "r_record").agg(F.max_by("match", "_line").alias("match"))
    return last.select("l_record", "r_record", "match", F.lit(labelled_by).cast("string").alias("labelled_by"),
                       F.current_timestamp().alias("labelled_at"))
