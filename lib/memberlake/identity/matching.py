"""Probabilistic (Fellegi-Sunter) matching of member records that share no identifier.

Deterministic edges need a shared e-mail, phone or member id; a person who registered twice
with a typo in the name and no e-mail on one record is split. Here member records are paired
within blocks (configurable SQL keys: postcode + surname prefix, birth date + first initial,
phonetic surname + city), each pair gets a comparison level per field (exact, similar, different,
or null), and a match weight is the sum of log2(m/u) over the fields plus the prior:

- street, postcode and city are compared one by one (kept for review) but scored as one
  ``address`` comparison: they are one fact about a person, and three independent agreements
  would count a household's shared address (or a move) three times;
- ``u`` (how often a level occurs between two random records) comes from random pairs;
- ``m`` (how often it occurs between two records of one person) is estimated by
  expectation-maximisation, one EM session per blocking rule on that rule's pairs with the
  fields the rule blocks on left out (they agree by construction, and EM would read that as
  evidence), each field's ``m`` the mean over the sessions that leave it free. EM runs on the
  distinct level patterns and their counts, a few hundred rows collected to the driver;
- the share of matches among all candidates then follows with ``m`` and ``u`` fixed (vetoed
  patterns count as non-matches), and the prior for scoring is that share scaled from the
  candidates to all record pairs;
- exact name matches are weighted by the name's own frequency (term-frequency adjustment), so
  "Smith" counts for less than "Quennell".

Pairs whose probability reaches the threshold, and which pass the veto rules (two records with
different first names *and* different birth dates are never one person, whatever their shared
address says: households), become ``member``—``member`` edges. Every scored pair is kept in
``match_pairs`` with its levels, so a reviewer can see why.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import reduce

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.exprs import member_node
from memberlake.settings import MatchingSettings

log = logging.getLogger(__name__)

NULL = -1  # a level meaning "one side is missing": neutral, no evidence either way
COLUMNS = ("first_name", "last_name", "birth_date", "street", "postcode", "city")  # compared one by one
FIELDS = ("first_name", "last_name", "birth_date", "address")                      # scored comparisons
FIELD_OF = {**{c: c for c in COLUMNS}, "street": "address", "postcode": "address", "city": "address"}
# Levels per scored field, highest = strongest agreement; index = level.
LEVELS = {"first_name": 4, "last_name": 4, "birth_date": 3, "address": 4}
TF_LEVEL = 3  # the exact level of a name field
TF_NAMES = ("first_name", "last_name")  # the compared columns with an exact name level
# Candidate pairs one blocking join task forms (about a second of comparisons on one core).
PAIRS_PER_TASK = 250_000
# The version of the comparison levels: a run's levels are reused by the next incremental run
# only when it compares the same way (it is one of the identity job's run parameters).
# 2: street number and street name compared apart, postcode within one edit (2026-12-05).
# 3: a birth date's transposed digits must be one adjacent swap (1990-10-10 / 1990-01-01 is not).
# 4: two adjacent letters of a name swapped are similar (level 2), as one typo (2026-12-06).
# 5: Jaro-Winkler name levels beside Levenshtein, for names sharing their first letter (2026-12-06).
# 6: one name in the other field (one crossed pair exact) makes the first names alike (2026-12-07).
COMPARISONS = 6


def prepared(members: DataFrame) -> DataFrame:
    """One row per member record: its node id and the normalised fields compared and blocked on."""
    def name(c: str) -> Column:
        return F.nullif(F.lower(F.regexp_replace(F.trim(F.col(c)), r"[^\p{L}\p{N} '-]", "")), F.lit(""))

    street = F.nullif(F.lower(F.regexp_replace(F.split(F.col("street"), "[,\n]")[0], r"\s+", " ")), F.lit(""))
    return members.select(
        member_node(F.col("source"), F.col("member_id")).alias("record"),
        name("first_name").alias("first_name"), name("last_name").alias("last_name"),
        F.col("birth_date").cast("date").alias("birth_date"), F.trim(street).alias("street"),
        F.nullif(F.substring(F.regexp_replace("postcode", r"\s", ""), 1, 5), F.lit("")).alias("postcode"),
        F.nullif(F.lower(F.trim("city")), F.lit("")).alias("city"),
    ).where(F.col("record").isNotNull())


def _similarity(a: Column, b: Column) -> Column:
    """1 - Levenshtein distance / longer length (Spark's built-in ``levenshtein``)."""
    return F.lit(1.0) - F.levenshtein(a, b) / F.greatest(F.length(a), F.length(b), F.lit(1))


# A bounded Levenshtein (Spark stops at this many edits and returns -1) is a third of the full
# one's time on street-length strings; beyond the bound a similarity is below every threshold
# used here unless the longer string has more than BOUND / (1 - threshold) characters.
BOUND = 8


def _bounded(a: Column, b: Column) -> Column:
    """Edits between two differing values, -1 beyond ``BOUND``; null when equal or missing."""
    return F.when(a != b, F.levenshtein(a, b, BOUND))


def _similar(a: Column, b: Column, edits: Column, least: float) -> Column:
    """``_similarity`` from ``_bounded`` edits (a column computed once), exact wherever it can
    reach ``least``: beyond the bound it is 0 when that cannot reach ``least`` and computed in
    full (very long strings only) when it can. Equal values 1, a missing one null."""
    longer = F.greatest(F.length(a), F.length(b), F.lit(1))
    return (F.when(a.isNull() | b.isNull(), F.lit(None).cast("double")).when(a == b, 1.0).when(edits >= 0, F.lit(1.0) - edits / longer)
            .when(longer * (1 - least) <= BOUND, 0.0).otherwise(_similarity(a, b)))


def _swapped_once(a: Column, b: Column) -> Column:
    """``b`` is ``a`` with two adjacent, different characters swapped (2259 / 2295): one edit for
    a person, two for Levenshtein."""
    return (a != b) & (F.length(a) == F.length(b)) & F.exists(
        F.sequence(F.lit(1), F.greatest(F.length(a) - 1, F.lit(1))),
        lambda i: (F.substring(a, i, 1) != F.substring(a, i + 1, 1))
        & (F.overlay(a, F.concat(F.substring(a, i + 1, 1), F.substring(a, i, 1)), i, F.lit(2)) == b))


# Jaro-Winkler similarity at or above which two names sharing their first letter are similar
# (level 2) or alike (level 1): Splink's default name thresholds.
JARO_WINKLER = (0.92, 0.88)
# Spark has no Jaro-Winkler function, but its class path always holds Apache commons-lang3, whose
# ``StringUtils.getJaroWinklerDistance`` (a similarity despite its name, rounded to two decimals;
# deprecated there in favour of commons-text's, which is not a static method ``reflect`` can call)
# runs in the JVM through Spark's ``reflect``: no Python worker, no extra package. Its prefix
# bonus counts every shared leading letter, not Winkler's first four ("brittany" / "brittney"
# 0.96, not 0.95): near the thresholds, long names with a long shared start rate a little higher.
_JARO_WINKLER = ("org.apache.commons.lang3.StringUtils", "getJaroWinklerDistance")


def jaro_winkler(a: Column, b: Column) -> Column:
    """Jaro-Winkler similarity of two names that differ and share their first letter; null
    otherwise. Where the first letters differ, a high Jaro-Winkler says "one name inside the
    other" more often than "a typo": "ray" / "gray" 0.92, "nathan" / "jonathan" 0.92, "andrea" /
    "sandra" 0.89 among the generator's and Febrl's names, none of them one person's slip."""
    return F.when((a != b) & (F.substring(a, 1, 1) == F.substring(b, 1, 1)),
                  F.reflect(*map(F.lit, _JARO_WINKLER), a, b).cast("double"))


def _name_level(a: Column, b: Column, edits: Column, sounds: tuple[Column, Column],
                jw: Column | None = None) -> Column:
    """3 exact, 2 similar (Levenshtein, or Jaro-Winkler ``jw`` where given) or two adjacent
    letters swapped ("burman" / "buramn": a person's one slip, which Levenshtein counts as two
    edits and scores 0.67 on six letters), 1 sounds alike or less similar, 0 different.
    ``edits``: ``_bounded(a, b)``; ``sounds``: their ``soundex``; ``jw``: ``jaro_winkler(a, b)``
    (a column computed once)."""
    sim = _similar(a, b, edits, 0.7)
    similar, alike = (sim >= 0.8) | _one_swap(a, b, edits), (sounds[0] == sounds[1]) | (sim >= 0.7)
    if jw is not None:   # null where not computed (equal names, other first letters): no evidence
        jw = F.coalesce(jw, F.lit(0.0))
        similar, alike = similar | (jw >= JARO_WINKLER[0]), alike | (jw >= JARO_WINKLER[1])
    return F.when(a.isNull() | b.isNull(), NULL).when(a == b, 3).when(similar, 2).when(alike, 1).otherwise(0)


def _one_swap(a: Column, b: Column, edits: Column) -> Column:
    """``_swapped_once`` behind the cheap test it implies: exactly two ``edits`` (a column
    computed once), so the per-character check runs on few pairs. Unguarded, it ran on every
    pair of differing values and was a quarter of the comparisons' time."""
    return (edits == 2) & _swapped_once(a, b)


LEVEL_COLUMNS = [*[f"{c}_level" for c in COLUMNS], "address_level"]
# A record's own values that the comparisons read (name sounds, the street's number and
# letters, the birth date's digits): computed once per record where records are keyed for
# blocking, instead of once per pair on each side (a pair is compared with four name sounds,
# two street regexes and two date formats; per record, matching's comparisons took a fifth less).
DERIVED = ("_sx_first", "_sx_last", "_street_no", "_street_letters", "_birth_digits")
# A blocked pair's columns: both records' ids, compared fields and derived values.
SIDES = [f"{side}_{c}" for side in "lr" for c in ("record", *COLUMNS, *DERIVED)]


def derived(prefix: str = "") -> list[Column]:
    """``DERIVED`` from the columns ``<prefix><column>``, aliased ``<prefix><derived>``."""
    c = lambda name: F.col(prefix + name)  # noqa: E731
    return [F.soundex(c("first_name")).alias(f"{prefix}_sx_first"), F.soundex(c("last_name")).alias(f"{prefix}_sx_last"),
            F.nullif(F.regexp_extract(c("street"), r"^\s*(\d+)", 1), F.lit("")).alias(f"{prefix}_street_no"),
            F.nullif(F.regexp_replace(c("street"), r"[^\p{L}]", ""), F.lit("")).alias(f"{prefix}_street_letters"),
            F.date_format(c("birth_date"), "yyyyMMdd").alias(f"{prefix}_birth_digits")]


def levels(pairs: DataFrame) -> DataFrame:
    """Add ``<field>_level`` columns to pairs of prepared records (columns ``l_*`` and ``r_*``).

    Built in five projections so that a comparison several levels read (the bounded edits of
    each name, street and postcode pair, the street similarity and the street number and letters
    in both street and address, the name swap in both names, the birth dates' digit strings in
    every digit test) is computed once per pair: in one
    projection Spark repeats a subexpression inside each conditional branch that uses it, and
    the optimizer does not merge projections that would repeat a costly expression (at a million
    records the candidates are tens of millions of pairs, so this is most of matching's time)."""
    out = [c for c in pairs.columns if c[2:] not in DERIVED]
    for side in "lr":   # pairs not formed by ``block`` (tests, hand-made pairs): derive per pair
        if any(f"{side}_{c}" not in pairs.columns for c in DERIVED):
            pairs = pairs.select(*[c for c in pairs.columns if c[2:] not in DERIVED or c[0] != side],
                                 *derived(f"{side}_"))
    l, r = (lambda c: F.col(f"l_{c}")), (lambda c: F.col(f"r_{c}"))
    ld, rd = l("birth_date"), r("birth_date")
    ls, rs = l("street"), r("street")

    def exact(c: str) -> Column:
        return F.when(l(c).isNull() | r(c).isNull(), NULL).when(l(c) == r(c), 1).otherwise(0)

    def digits(side: str) -> Column:   # YYYYMMDD, only where the two dates differ
        return F.when(ld != rd, F.col(f"{side}__birth_digits"))

    def name(a: str, b: str) -> Column:   # Jaro-Winkler on the first/first and last/last pairs only
        jw = F.col(f"_lv_j{a[0]}{b[0]}") if a == b else None
        return _name_level(l(a), r(b), F.col(f"_lv_d{a[0]}{b[0]}"), (l(f"_sx_{a[:-5]}"), r(f"_sx_{b[:-5]}")), jw)

    def number(side: str) -> Column:   # the street number and the street name's letters, where the streets differ
        return F.when(ls != rs, F.col(f"{side}__street_no"))

    def letters(side: str) -> Column:
        return F.when(ls != rs, F.col(f"{side}__street_letters"))

    lp, rp = l("postcode"), r("postcode")
    # 2 exact, 1 within one edit (a digit mistyped, added or dropped, or two adjacent swapped)
    postcode_edits = F.col("_lv_dpp")
    postcode = (F.when(lp.isNull() | rp.isNull(), NULL).when(lp == rp, 2)
                .when((postcode_edits == 1) | _one_swap(lp, rp, postcode_edits), 1).otherwise(0))
    # the bounded edits each name, street and postcode comparison reads in several branches, computed once
    bounded = pairs.select(
        "*", *[_bounded(l(a), r(b)).alias(f"_lv_d{a[0]}{b[0]}") for a, b in (
            ("first_name", "first_name"), ("last_name", "last_name"), ("first_name", "last_name"),
            ("street", "street"), ("postcode", "postcode"))],
        *[jaro_winkler(l(c), r(c)).alias(f"_lv_j{c[0]}{c[0]}") for c in ("first_name", "last_name")])
    base = bounded.select(
        "*", name("first_name", "first_name").alias("_lv_first"), name("last_name", "last_name").alias("_lv_last"),
        name("first_name", "last_name").alias("_lv_fl"),
        digits("l").alias("_lv_ld"), digits("r").alias("_lv_rd"),
        number("l").alias("_lv_ln"), number("r").alias("_lv_rn"), letters("l").alias("_lv_lw"), letters("r").alias("_lv_rw"),
        F.when(ls.isNull() | rs.isNull(), NULL).when(ls == rs, 2).when(_similar(ls, rs, F.col("_lv_dss"), 0.8) >= 0.8, 1)
        .otherwise(0).alias("_lv_street"),
        postcode.alias("postcode_level"), exact("city").alias("city_level"))
    # the street number and name compared apart: "18 richards s treet" is "18 richards street"
    # (same number, same letters), "tubb place" is like "15 tubb place" (a number left out),
    # "73 b y n o e place" like "73 bynoe plice" (same number, similar letters)
    ln, rn, lw, rw = (F.col(c) for c in ("_lv_ln", "_lv_rn", "_lv_lw", "_lv_rw"))
    same_number = ln.isNotNull() & (ln == rn)
    one_number = ln.isNull() != rn.isNull()
    street_level = (F.when((F.col("_lv_street") == NULL) | (F.col("_lv_street") == 2), F.col("_lv_street"))
                    .when((lw == rw) & (same_number | (ln.isNull() & rn.isNull())), 2)
                    .when((F.col("_lv_street") == 1) | ((lw == rw) & one_number)
                          | (same_number & (_similarity(lw, rw) >= 0.8)), 1)
                    .otherwise(0))
    # the second crossed name pair only where the first agrees at all (most pairs' first name is
    # unlike the other's last name): the two crossed comparisons were a fifth of the levels'
    # time, this skips most of the second (levels of 2.3M pairs 10.9 s -> 10.6 s)
    fl = F.col("_lv_fl")
    streets = base.select("*", street_level.alias("street_level"),
                          F.when(fl >= 1, _bounded(l("last_name"), r("first_name"))).alias("_lv_dlf"))
    # first and last names may be swapped between two records of one person: both crossed
    # comparisons must agree for the swap to count, and a swap counts as similar at most (2),
    # not exact: "Donna Collins" and "Collins Donna" are also two people often enough. Where
    # the first crossed level is 0 or -1, least(first, second, 2) is -1 if the second has a
    # missing side and the first level otherwise, without comparing the second pair.
    swap = (F.when(fl >= 1, F.least(fl, name("last_name", "first_name"), F.lit(2)))
            .otherwise(F.least(fl, F.when(l("last_name").isNull() | r("first_name").isNull(), NULL).otherwise(2))))
    street, postcode, city = F.col("street_level"), F.col("postcode_level"), F.col("city_level")
    # 3 same address (street exact, or similar within one postcode), 2 same postcode (or a
    # similar street within a postcode one edit away), 1 same city or a similar street, 0
    # different, -1 nothing to compare. A postcode one edit away alone is no evidence: among
    # 4-digit postcodes, random pairs are one edit apart too often (febrl1: address level 1's
    # u rose from 0.001 to 0.015 when it counted)
    address = (F.when((street == NULL) & (postcode == NULL) & (city == NULL), NULL)
               .when((street == 2) | ((street == 1) & (postcode == 2)), 3)
               .when((postcode == 2) | ((street == 1) & (postcode == 1)), 2)
               .when((city == 1) | (street == 1), 1).otherwise(0))
    compared = streets.select(
        "*", swap.alias("_lv_swap"), F.levenshtein("_lv_ld", "_lv_rd").alias("_lv_edits"), address.alias("address_level"))
    # near: within a month, day and month swapped, one digit of YYYYMMDD mistyped (a year off by
    # one digit: 1985 / 1958 is two, 1985 / 1995 one), or two adjacent digits transposed
    ls_, rs_, edits = F.col("_lv_ld"), F.col("_lv_rd"), F.col("_lv_edits")
    near = ((F.abs(F.datediff(ld, rd)) <= 31) | ((F.year(ld) == F.year(rd)) & (F.month(ld) == F.dayofmonth(rd))
                                               & (F.dayofmonth(ld) == F.month(rd))) | (edits <= 1)
            | _one_swap(ls_, rs_, edits))
    birth = F.when(ld.isNull() | rd.isNull(), NULL).when(ld == rd, 2).when(near, 1).otherwise(0)
    # one name written in the other field ("lavis henry" / "jordan lavis"): a shared name the
    # same-field comparisons miss. Alike (1) at most, and on the first name only: one name, not
    # two. Only between records with both names (a lone "ann" in either field says little)
    both = (l("first_name").isNotNull() & l("last_name").isNotNull() & r("first_name").isNotNull()
            & r("last_name").isNotNull())
    moved = F.when(both & ((l("first_name") == r("last_name")) | (l("last_name") == r("first_name"))), 1)
    return compared.select("*", F.greatest("_lv_first", "_lv_swap", moved).alias("first_name_level"),
                           F.greatest("_lv_last", "_lv_swap").alias("last_name_level"),
                           birth.alias("birth_date_level")).select(*out, *LEVEL_COLUMNS)


def candidate_levels(pairs: DataFrame, tf_fields: list[str]) -> DataFrame:
    """``levels`` of blocked pairs, reduced to what training, scoring and ``match_pairs`` read.

    Why: at a million records the default rules form tens of millions of candidates, and each
    carried both records' six text fields into the cached frame (it outgrew memory and spilled).
    Kept: the two record ids, the rules, the levels, and per name a hash of the name only where
    the pair agrees on it exactly (the one case ``score`` looks its frequency up; a hash, so that
    ``match_pairs``, which keeps the candidates for the next incremental run, holds no names)."""
    leveled = levels(pairs)
    return leveled.select("l_record", "r_record", "rule", "rules", *LEVEL_COLUMNS, *[
        (F.when(F.col(f"{f}_level") == TF_LEVEL, F.xxhash64(F.col(f"l_{f}"))) if f in tf_fields
         else F.lit(None).cast("long")).alias(f"{f}_tf_key") for f in TF_NAMES])


def cached_candidates(candidates: DataFrame) -> DataFrame:
    """``candidate_levels`` kept for counting, training and scoring in Spark's compressed columnar
    cache (memory, then disk), not as a local checkpoint's rows. Why: at a million records the
    candidates are tens of millions of rows of small integers and two ids; as rows they outgrow
    memory, while the column cache's encodings keep them small, and training's grouping of level
    patterns reads only the level columns (``bench/matching_scale.py`` at 960,820 generator records:
    training 34.0 s -> 9.6 s, all of matching 447.8 s -> 409.0 s; bench/RESULTS.md).
    The caller unpersists once the scored pairs are materialised."""
    from pyspark import StorageLevel

    cached = candidates.persist(StorageLevel.MEMORY_AND_DISK)
    cached.count()
    return cached


CANDIDATE_COLUMNS = ["l_record", "r_record", "rule", "rules", *LEVEL_COLUMNS, *[f"{f}_tf_key" for f in TF_NAMES]]


def _sides(records: DataFrame) -> tuple[DataFrame, DataFrame]:
    cols = ["record", *COLUMNS, *DERIVED]
    records = records.select("record", *COLUMNS, *derived())
    return (records.select(*[F.col(c).alias(f"l_{c}") for c in cols]),
            records.select(*[F.col(c).alias(f"r_{c}") for c in cols]))


@dataclass
class Blocking:
    pairs: DataFrame            # l_record < r_record and both sides' columns, one row per pair: rule = the
                                # first rule that forms it, rules = bit i set when rule i does
    skipped_blocks: DataFrame   # rule, key, records: blocks over max_block_size, not paired


def rule_key(rule: list[str]) -> Column:
    """A record's key under one blocking rule: its expressions joined, null when one is null
    (such a record is paired by no pair of that rule)."""
    valid = reduce(lambda a, b: a & b, [F.expr(e).isNotNull() for e in rule])
    return F.when(valid, F.concat_ws("\u0001", *[F.expr(e) for e in rule]))


@dataclass
class Giants:
    estimates: list[int]        # per rule, the pairs its blocks form (giant blocks left out)
    blocks: DataFrame           # rule, key, records: blocks over max_block_size, not paired
    keys: list[list[str]]       # per rule, the keys of its giant blocks


def giant_blocks(records: DataFrame, cfg: MatchingSettings) -> Giants:
    """Per rule, the pairs its blocks form and its giant blocks, from one pass over every rule's
    block sizes (one Spark job for all rules: on small data a job per rule was most of blocking's
    time). Giant blocks are few by construction: the job collects them for its log anyway."""
    keys = F.array(*[F.struct(F.lit(i).alias("rule"), rule_key(rule).alias("key")) for i, rule in enumerate(cfg.blocking)])
    n = F.col("n")
    sizes = (records.select(F.explode(keys).alias("k")).select("k.rule", "k.key").where(F.col("key").isNotNull())
             .groupBy("rule", "key").agg(F.count(F.lit(1)).alias("n")))
    rows = {r["rule"]: r for r in sizes.groupBy("rule").agg(
        F.sum(F.when(n <= cfg.max_block_size, n * (n - 1) / 2)).alias("pairs"),
        F.collect_list(F.when(n > cfg.max_block_size, F.struct(F.col("key"), n.alias("records")))).alias("giant"),
    ).collect()}
    estimates = [int(rows[i]["pairs"] or 0) if i in rows else 0 for i in range(len(cfg.blocking))]
    per_rule = [sorted(rows[i]["giant"] if i in rows else []) for i in range(len(cfg.blocking))]
    giant = [(" & ".join(rule), g["key"], g["records"]) for rule, found in zip(cfg.blocking, per_rule, strict=True)
             for g in found]
    return Giants(estimates, records.sparkSession.createDataFrame(giant, "rule string, key string, records long"),
                  [[g["key"] for g in found] for found in per_rule])


def keyed_records(records: DataFrame, cfg: MatchingSettings, giants: Giants) -> DataFrame:
    """Records with every rule's key as ``_k<i>``, null where the record is in a giant block of
    that rule (materialised: every rule's join reads it). The giant keys are already on the driver,
    so they are left out as literals (a hash set once there are more than a few), not by joins: a
    join per rule was 11 broadcasts, most of blocking's time on small data.

    A key is kept as its 64-bit hash, not its text: every rule's join shuffles, sorts and compares
    every record's keys (the later rules' to mark which rules pair a pair, the earlier ones' to
    keep each pair once), and longs do that faster than strings of a dozen characters (blocking
    at 288,510 records, 5.1M candidates: 39.0 s -> 29.7 s). Two different keys of one rule
    sharing a hash would only add a candidate pair, which the comparisons then judge; among a
    million keys that happens with a chance of about 3 in 10^8."""
    def key(i: int, rule: list[str]) -> Column:
        k = rule_key(rule)
        k = F.when(~k.isin(giants.keys[i]), k) if giants.keys[i] else k
        return F.when(k.isNotNull(), F.xxhash64(k)).alias(f"_k{i}")

    return records.select("record", *COLUMNS, *derived(),
                          *[key(i, rule) for i, rule in enumerate(cfg.blocking)]).localCheckpoint()


# Built as SQL text: each Column call is a round trip to the JVM, and these expressions have a term
# per rule in every rule's frame (on small data the round trips were most of blocking's time).
def _same(keys: list[str], j: int) -> str:
    return f"coalesce(l_{keys[j]} = r_{keys[j]}, false)"


def _rules(keys: list[str]) -> Column:
    """Bit j set when rule j pairs the two sides."""
    return F.expr(" + ".join(f"CASE WHEN {_same(keys, j)} THEN {1 << j} ELSE 0 END" for j in range(len(keys))))


def _none_before(keys: list[str], i: int) -> str:
    """No rule before rule i pairs the two sides (that rule's frame holds the pair)."""
    return " AND ".join([f"NOT {_same(keys, j)}" for j in range(i)]) or "true"


def _side(frame: DataFrame, s: str) -> DataFrame:
    return frame.toDF(*[f"{s}_{c}" for c in frame.columns])


def block(records: DataFrame, cfg: MatchingSettings) -> Blocking:
    """Candidate pairs from each blocking rule; giant blocks are skipped and reported.

    Every record carries every rule's key (null in a giant block), so a rule's self-join drops
    the pairs an earlier rule forms and marks the rules that form each pair: the candidates come
    out distinct with both records' columns, without a de-duplicating shuffle of the pairs or
    joins back to the records."""
    giants = giant_blocks(records, cfg)
    keyed = keyed_records(records, cfg, giants)
    keys = [f"_k{i}" for i in range(len(cfg.blocking))]
    frames = []
    for i, k in enumerate(keys):
        # Tasks by the pairs the rule forms, not by the records it reads: a million records are
        # a few hundred MB, which adaptive execution would coalesce into a handful of join tasks,
        # and one of them would then form tens of millions of pairs alone.
        tasks = max(1, math.ceil(giants.estimates[i] / PAIRS_PER_TASK))
        log.debug("blocking rule %d: at most %d pairs in %d tasks", i, giants.estimates[i], tasks)
        side = keyed.where(F.col(k).isNotNull()).repartition(tasks, k)
        pairs = _side(side, "l").join(_side(side, "r"), F.col(f"l_{k}") == F.col(f"r_{k}")).where(
            F.expr(f"l_record < r_record AND {_none_before(keys, i)}"))
        frames.append(pairs.select(*SIDES, F.lit(i).alias("rule"), _rules(keys).alias("rules")))
    return Blocking(reduce(DataFrame.unionByName, frames), giants.blocks)


def block_batch(keyed: DataFrame, changed: DataFrame, n_rules: int) -> DataFrame:
    """The candidate pairs ``block`` forms that hold a record of ``changed`` (column ``record``),
    from ``keyed_records`` of all records: each changed record against every record, pairs of two
    changed records once; same columns and orientation (l_record < r_record)."""
    keys = [f"_k{i}" for i in range(n_rules)]
    flagged = keyed.join(changed.select("record", F.lit(True).alias("_changed")), "record", "left")
    mine = flagged.where(F.col("_changed"))
    cols = ["record", *COLUMNS, *DERIVED, *keys]
    frames = []
    for i, k in enumerate(keys):
        pairs = _side(mine.where(F.col(k).isNotNull()), "a").join(
            _side(flagged.where(F.col(k).isNotNull()), "b"), F.col(f"a_{k}") == F.col(f"b_{k}")).where(
            (F.col("a_record") != F.col("b_record"))
            & (F.col("b__changed").isNull() | (F.col("a_record") < F.col("b_record"))))
        oriented = pairs.selectExpr(  # SQL text, as in _rules: a column each, not a round trip per call
            *[f"CASE WHEN a_record < b_record THEN `{x}_{c}` ELSE `{y}_{c}` END AS `{side}_{c}`"
              for side, x, y in (("l", "a", "b"), ("r", "b", "a")) for c in cols])
        frames.append(oriented.where(F.expr(_none_before(keys, i)))
                      .select(*SIDES, F.lit(i).alias("rule"), _rules(keys).alias("rules")))
    return reduce(DataFrame.unionByName, frames)


def rule_counts(pairs: DataFrame, blocking: list[list[str]]) -> tuple[int, dict[str, int]]:
    """(candidate pairs, pairs per rule): a pair two rules form counts for both."""
    row = pairs.agg(F.count(F.lit(1)).alias("all"), *[
        F.count(F.when(F.col("rules").bitwiseAND(F.lit(1 << i)) != 0, 1)).alias(f"r{i}") for i in range(len(blocking))]
    ).first()
    return row["all"], {" & ".join(rule): row[f"r{i}"] for i, rule in enumerate(blocking)}


_BUCKETS = 1 << 30


def _hashed_share(share: float, *columns: str, seed: int) -> F.Column:
    """True for about ``share`` of the rows, chosen by a hash of ``columns`` (not by position)."""
    return F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in columns]), F.lit(_BUCKETS)) < F.lit(int(share * _BUCKETS))


def random_pairs(records: DataFrame, n: int, seed: int) -> DataFrame:
    """About ``n`` pairs of two distinct records (almost all non-matches), for ``u``.

    Records and pairs are drawn by a hash of their ids with ``seed``, not by row position, so the
    same records give the same pairs however they were delivered or partitioned (a sample by
    position made one data set's weights depend on how many landing files it came in).
    """
    total = records.count()
    share = min(1.0, math.sqrt(2.0 * n) / max(total, 1) * 1.2) if total else 0.0
    left, right = _sides(records.where(_hashed_share(share, "record", seed=seed)))
    drawn = share * total
    keep = min(1.0, n / max(drawn * (drawn - 1) / 2, 1.0))
    return (left.crossJoin(right).where(F.col("l_record") < F.col("r_record"))
            .where(_hashed_share(keep, "l_record", "r_record", seed=seed)))


def level_counts(pairs: DataFrame) -> dict[str, np.ndarray]:
    """Per field, the number of pairs at each level (null level excluded), in one Spark job."""
    levels = F.array(*[F.struct(F.lit(f).alias("field"), F.col(f"{f}_level").alias("level")) for f in FIELDS])
    rows = (pairs.select(F.explode(levels).alias("x")).select("x.field", "x.level")
            .where(F.col("level").isNotNull() & (F.col("level") != NULL)).groupBy("field", "level").count().collect())
    out = {f: np.zeros(LEVELS[f]) for f in FIELDS}
    for r in rows:
        out[r["field"]][int(r["level"])] = r["count"]
    return out


def u_probabilities(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Level shares among random pairs, with one pseudo-count per level (no zero u)."""
    return {f: (c + 1.0) / (c.sum() + len(c)) for f, c in counts.items()}


@dataclass
class Patterns:
    """Distinct (level vector, rules, vetoed) combinations of candidate pairs and their counts."""
    levels: np.ndarray   # one row per combination, one column per scored field
    rules: np.ndarray    # bit i set when blocking rule i pairs them
    vetoed: np.ndarray   # a veto rule holds: never a match
    counts: np.ndarray


def vetoed(veto: list[str]) -> Column:
    return reduce(lambda a, b: a | b, [F.coalesce(F.expr(v), F.lit(False)) for v in veto], F.lit(False))


def patterns(pairs: DataFrame, veto: list[str]) -> Patterns:
    """The candidates' level patterns with counts (small: collected)."""
    cols = [f"{f}_level" for f in FIELDS]
    rules = F.col("rules") if "rules" in pairs.columns else F.lit(1)
    rows = pairs.groupBy(*cols, rules.alias("rules"), vetoed(veto).alias("vetoed")).count().collect()
    return Patterns(np.array([[r[c] for c in cols] for r in rows], dtype=int).reshape(-1, len(FIELDS)),
                    np.array([r["rules"] for r in rows], dtype=np.int64),
                    np.array([r["vetoed"] for r in rows], dtype=bool),
                    np.array([r["count"] for r in rows], dtype=float))


def rule_fields(rule: list[str]) -> set[str]:
    """The scored fields a blocking rule's keys read: within its pairs they agree by construction."""
    names = set(re.findall(r"[A-Za-z_]\w*", " ".join(rule)))
    return {FIELD_OF[c] for c in names if c in FIELD_OF}


@dataclass
class Parameters:
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float          # share of candidate pairs that are matches
    iterations: int
    converged: bool

    def bayes_factors(self) -> dict[str, np.ndarray]:
        return {f: np.log2(self.m[f] / self.u[f]) for f in FIELDS}

    def rows(self) -> list[tuple[str, int, float, float]]:
        return [(f, lvl, float(self.m[f][lvl]), float(self.u[f][lvl])) for f in FIELDS for lvl in range(LEVELS[f])]

    @classmethod
    def from_rows(cls, rows: list, prior: float) -> "Parameters | None":
        """Saved parameters, or None when they were saved for other comparisons (retrain)."""
        if {r["field"] for r in rows} != set(FIELDS):
            log.warning("matching: saved parameters are for fields %s, not %s: retraining",
                        sorted({r["field"] for r in rows}), list(FIELDS))
            return None
        m = {f: np.zeros(LEVELS[f]) for f in FIELDS}
        u = {f: np.zeros(LEVELS[f]) for f in FIELDS}
        for r in rows:
            m[r["field"]][r["level"]] = r["m"]
            u[r["field"]][r["level"]] = r["u"]
        return cls(m, u, prior, 0, True)


def initial_m() -> dict[str, np.ndarray]:
    """Start: agreement much likelier among matches (EM moves it from here)."""
    return {f: np.geomspace(0.02, 1.0, LEVELS[f]) / np.geomspace(0.02, 1.0, LEVELS[f]).sum() for f in FIELDS}


def _log_bayes_factor(levels: np.ndarray, m: dict[str, np.ndarray], u: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros(len(levels))
    for j, f in enumerate(FIELDS):
        lv = levels[:, j]
        known = lv >= 0
        out[known] += np.log(m[f][lv[known]]) - np.log(u[f][lv[known]])
    return out


def _posterior(log_bf: np.ndarray, lam: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(np.log1p(-lam) - np.log(lam) - log_bf, -700, 700)))


def expectation_maximisation(pats: np.ndarray, counts: np.ndarray, u: dict[str, np.ndarray],
                             prior: float = 0.1, max_iter: int = 50, tol: float = 1e-6,
                             m: dict[str, np.ndarray] | None = None) -> Parameters:
    """Fellegi-Sunter EM with ``u`` fixed: the ``m`` probabilities and the match prior."""
    m = {f: v.copy() for f, v in (m or initial_m()).items()}
    lam, converged, iterations = prior, False, 0
    while iterations < max_iter:
        iterations += 1
        weight = _posterior(_log_bayes_factor(pats, m, u), lam) * counts     # expected matches per pattern
        new_lam = float(np.clip(weight.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        new_m = {}
        for j, f in enumerate(FIELDS):
            lv = pats[:, j]
            acc = np.full(LEVELS[f], 1e-3)  # small pseudo-count: no level gets m = 0
            np.add.at(acc, lv[lv >= 0], weight[lv >= 0])
            new_m[f] = acc / acc.sum()
        delta = max(abs(new_lam - lam), *[float(np.abs(new_m[f] - m[f]).max()) for f in FIELDS])
        m, lam = new_m, new_lam
        if delta < tol:
            converged = True
            break
    return Parameters(m, u, lam, iterations, converged)


def term_frequencies(records: DataFrame, fields: list[str]) -> DataFrame:
    """(field, value, key, tf): the share of records carrying each name value (``key`` is the
    value's hash, as ``candidate_levels`` keeps it)."""
    if not fields:
        return records.sparkSession.createDataFrame([], "field string, value string, key long, tf double")
    totals = records.agg(*[F.count(f).alias(f) for f in fields]).first()   # non-null values per field
    frames = [records.where(F.col(f).isNotNull()).groupBy(F.col(f).alias("value"))
              .agg((F.count(F.lit(1)) / (totals[f] or 1)).alias("tf"))
              .select(F.lit(f).alias("field"), "value", F.xxhash64("value").alias("key"), "tf") for f in fields]
    return reduce(DataFrame.unionByName, frames)


def random_pair_prior(params: Parameters, candidates: int, records: int) -> float:
    """The chance that two *random* records match: EM's share of matches among the candidates,
    times the candidates, over all record pairs. Scoring with it (not the share among blocked
    pairs, which can be near 1 on small data) keeps the weights conservative, as blocking does not
    add evidence."""
    total = records * (records - 1) / 2
    return float(min(max(params.prior * candidates / total, 1e-12), 0.5)) if total else 1e-12


def score_candidates(candidates: DataFrame, records: DataFrame, params: Parameters, cfg: MatchingSettings,
                     n_candidates: int, n_records: int) -> DataFrame:
    """``score`` with the configured term frequencies and the random-pair prior (as the job scores)."""
    tf = term_frequencies(records, cfg.tf_fields) if cfg.tf_fields else None
    return score(candidates, params, tf, cfg.tf_fields, random_pair_prior(params, n_candidates, n_records))


def score(pairs: DataFrame, params: Parameters, tf: DataFrame | None, tf_fields: list[str],
          prior: float | None = None) -> DataFrame:
    """Match weight (log2 Bayes factor incl. prior) and probability per pair.

    A level's factor is a literal looked up by a CASE over the level (no join: the candidates
    are tens of millions of rows at a million records); only the term frequencies of exact names
    are joined, from a broadcast table of the names."""
    factors = params.bayes_factors()
    out = pairs
    for f in FIELDS:
        level = F.col(f"{f}_level")
        bf = reduce(lambda acc, lvl: acc.when(level == lvl, F.lit(float(factors[f][lvl]))), range(1, LEVELS[f]),
                    F.when(level == 0, F.lit(float(factors[f][0]))))   # null for a missing side (-1)
        # names only: a field without an exact name level (TF_LEVEL) has no term frequency
        names_tf = tf is not None and f in tf_fields and LEVELS[f] > TF_LEVEL
        if names_tf:
            # exact agreement on a name: u is that name's own frequency instead of the average;
            # compact candidates carry the name's hash, full pairs (tests, review) the name itself
            key = (F.col(f"{f}_tf_key") if f"{f}_tf_key" in pairs.columns
                   else F.when(level == TF_LEVEL, F.xxhash64(F.col(f"l_{f}"))))
            names = F.broadcast(tf.where(F.col("field") == f).select(F.col("key").alias(f"_{f}_key"),
                                                                        F.col("tf").alias(f"_{f}_tf")))
            out = out.join(names, key == F.col(f"_{f}_key"), "left").drop(f"_{f}_key")
            adjusted = F.log2(F.lit(float(params.m[f][TF_LEVEL])) / F.greatest(F.col(f"_{f}_tf"), F.lit(1e-9)))
            bf = F.when((level == TF_LEVEL) & F.col(f"_{f}_tf").isNotNull(), adjusted).otherwise(bf)
        out = out.withColumn(f"{f}_bf", bf)
        if names_tf:
            out = out.drop(f"_{f}_tf")
    p0 = params.prior if prior is None else prior
    weight = F.lit(math.log2(p0 / (1 - p0))) + reduce(lambda a, b: a + b, [F.coalesce(F.col(f"{f}_bf"), F.lit(0.0)) for f in FIELDS])
    return (out.withColumn("match_weight", weight)
            .withColumn("match_probability", F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -F.col("match_weight")))))


def match_share(pats: Patterns, m: dict[str, np.ndarray], u: dict[str, np.ndarray],
                sessions: dict[int, tuple[float, list[int]]] | None = None, max_iter: int = 500) -> float:
    """The share of candidates that are matches (vetoed patterns never are).

    A pair counts with the first rule that pairs it: with that rule's EM session (its share of
    matches, its blocked field columns left out) when ``sessions`` has one, else by EM on the
    share alone over those pairs with ``m`` and ``u`` fixed."""
    rules = np.maximum(pats.rules, 1)
    first = np.log2(rules & -rules).astype(int)
    post = np.zeros(len(pats.counts))
    for i in np.unique(first):
        mine = first == i
        levels = pats.levels[mine].copy()
        if sessions and i in sessions:
            lam, blocked = sessions[i]
            levels[:, blocked] = NULL
            post[mine] = _posterior(_log_bayes_factor(levels, m, u), lam)
            continue
        log_bf, counts, vetoed, lam = _log_bayes_factor(levels, m, u), pats.counts[mine], pats.vetoed[mine], 0.1
        for _ in range(max_iter):
            p = np.where(vetoed, 0.0, _posterior(log_bf, lam))
            new = float(np.clip((p * counts).sum() / counts.sum(), 1e-9, 1 - 1e-9))
            if abs(new - lam) < 1e-10:
                break
            lam = new
        post[mine] = p
    post[pats.vetoed] = 0.0
    return float((post * pats.counts).sum() / pats.counts.sum())


def fit(pats: Patterns, u: dict[str, np.ndarray], blocking: list[list[str]], max_iter: int = 50,
        tol: float = 1e-5) -> Parameters:
    """``m`` by one EM session per blocking rule (the rule's own fields left out), then the prior.

    A field that every rule blocks on takes its ``m`` from one EM over all candidates instead."""
    free_m: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
    sessions: dict[int, tuple[float, list[int]]] = {}
    iterations, converged = 0, True
    for i, rule in enumerate(blocking):
        mine = ((pats.rules >> i) & 1) == 1
        blocked = [j for j, f in enumerate(FIELDS) if f in rule_fields(rule)]
        if not mine.any() or len(blocked) == len(FIELDS):
            continue
        levels = pats.levels[mine].copy()
        levels[:, blocked] = NULL
        session = expectation_maximisation(levels, pats.counts[mine], u, max_iter=max_iter, tol=tol)
        iterations, converged = iterations + session.iterations, converged and session.converged
        sessions[i] = (session.prior, blocked)
        log.info("matching: EM session %d (%s; %d pairs): share of matches %.4f after %d iterations",
                 i, " & ".join(rule), int(pats.counts[mine].sum()), session.prior, session.iterations)
        for j, f in enumerate(FIELDS):
            if j not in blocked:
                free_m[f].append(session.m[f])
    m = {f: np.mean(v, axis=0) for f, v in free_m.items() if v}
    if len(m) < len(FIELDS):
        whole = expectation_maximisation(pats.levels, pats.counts, u, max_iter=max_iter, tol=tol)
        iterations, converged = iterations + whole.iterations, converged and whole.converged
        m.update({f: whole.m[f] for f in FIELDS if f not in m})
    return Parameters(m, u, match_share(pats, m, u, sessions), iterations, converged)


def train(spark: SparkSession, records: DataFrame, candidates: DataFrame, cfg: MatchingSettings) -> Parameters:
    """u from random pairs, m by EM sessions over the candidates' level patterns, then the prior."""
    u = u_probabilities(level_counts(levels(random_pairs(records, cfg.random_pairs, cfg.seed))))
    pats = patterns(candidates, cfg.veto)
    if not len(pats.counts):
        return Parameters(initial_m(), u, 1e-6, 0, False)
    params = fit(pats, u, cfg.blocking, cfg.em_iterations, cfg.em_tolerance)
    log.info("matching: EM %s after %d iterations on %d patterns (%d pairs); share of matches %.4f",
             "converged" if params.converged else "stopped", params.iterations, len(pats.counts),
             int(pats.counts.sum()), params.prior)
    return params


def accepted_pair(cfg: MatchingSettings) -> Column:
    return (F.col("match_probability") >= cfg.threshold) & ~vetoed(cfg.veto)


def match_edges(scored: DataFrame, cfg: MatchingSettings) -> DataFrame:
    """Accepted pairs as member—member identity edges (edge columns of ``graph.observed_edges``)."""
    accepted = scored.where(accepted_pair(cfg))
    return accepted.select(F.lit("member").alias("src_type"), F.col("l_record").alias("src_value"),
                           F.lit("member").alias("dst_type"), F.col("r_record").alias("dst_value"),
                           F.lit("matching").alias("origin"), F.lit(1).cast("long").alias("observations"),
                           F.array().cast("array<string>").alias("sources"))


PAIR_COLUMNS = [*CANDIDATE_COLUMNS, "match_weight", "match_probability"]


def match_pairs(scored: DataFrame, cfg: MatchingSettings) -> DataFrame:
    """The ``match_pairs`` table: every scored candidate pair, its levels, weight and verdict
    (``vetoed``: a veto rule holds, so never accepted whatever the weight). It is also the next
    incremental run's candidates (``identity/rematch.py``)."""
    return scored.select(*PAIR_COLUMNS, vetoed(cfg.veto).alias("vetoed"), accepted_pair(cfg).alias("accepted"))
