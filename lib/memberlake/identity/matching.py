"""Probabilistic (Fellegi-Sunter) matching of member records that share no identifier.

Deterministic edges need a shared e-mail, phone or member id; a person who registered twice
with a typo in the name and no e-mail on one record is split. Here member records are paired
within blocks (configurable SQL keys: postcode + surname prefix, birth date + first initial,
phonetic surname + city), each pair gets a comparison level per field (exact, similar, different,
or null), and a match weight is the sum of log2(m/u) over the fields plus the prior:

- ``u`` (how often a level occurs between two random records) comes from random pairs;
- ``m`` (how often it occurs between two records of one person) and the prior are estimated by
  expectation-maximisation. EM runs on the distinct level patterns and their counts, a few
  hundred rows collected to the driver, not on the pairs;
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
from dataclasses import dataclass
from functools import reduce

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.identity.graph import member_node
from memberlake.settings import MatchingSettings

log = logging.getLogger(__name__)

NULL = -1  # a level meaning "one side is missing": neutral, no evidence either way
FIELDS = ("first_name", "last_name", "birth_date", "street", "postcode", "city")
# Levels per field, highest = strongest agreement; index = level.
LEVELS = {"first_name": 4, "last_name": 4, "birth_date": 3, "street": 3, "postcode": 2, "city": 2}
TF_LEVEL = 3  # the exact level of a name field


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


def _name_level(a: Column, b: Column) -> Column:
    sim = _similarity(a, b)
    return (F.when(a.isNull() | b.isNull(), NULL).when(a == b, 3).when(sim >= 0.8, 2)
            .when((F.soundex(a) == F.soundex(b)) | (sim >= 0.7), 1).otherwise(0))


def levels(pairs: DataFrame) -> DataFrame:
    """Add ``<field>_level`` columns to pairs of prepared records (columns ``l_*`` and ``r_*``)."""
    l, r = (lambda c: F.col(f"l_{c}")), (lambda c: F.col(f"r_{c}"))
    # first and last names may be swapped between two records of one person: both crossed
    # comparisons must agree for the swap to count
    swapped = F.least(_name_level(l("first_name"), r("last_name")), _name_level(l("last_name"), r("first_name")))
    first = F.greatest(_name_level(l("first_name"), r("first_name")), swapped)
    last = F.greatest(_name_level(l("last_name"), r("last_name")), swapped)
    ld, rd = l("birth_date"), r("birth_date")
    near = ((F.abs(F.datediff(ld, rd)) <= 31) | ((F.year(ld) == F.year(rd)) & (F.month(ld) == F.dayofmonth(rd))
                                               & (F.dayofmonth(ld) == F.month(rd))))
    birth = F.when(ld.isNull() | rd.isNull(), NULL).when(ld == rd, 2).when(near, 1).otherwise(0)
    ls, rs = l("street"), r("street")
    street = F.when(ls.isNull() | rs.isNull(), NULL).when(ls == rs, 2).when(_similarity(ls, rs) >= 0.8, 1).otherwise(0)

    def exact(c: str) -> Column:
        return F.when(l(c).isNull() | r(c).isNull(), NULL).when(l(c) == r(c), 1).otherwise(0)

    return pairs.select("*", first.alias("first_name_level"), last.alias("last_name_level"),
                        birth.alias("birth_date_level"), street.alias("street_level"),
                        exact("postcode").alias("postcode_level"), exact("city").alias("city_level"))


def _sides(records: DataFrame) -> tuple[DataFrame, DataFrame]:
    cols = ["record", *FIELDS]
    return (records.select(*[F.col(c).alias(f"l_{c}") for c in cols]),
            records.select(*[F.col(c).alias(f"r_{c}") for c in cols]))


@dataclass
class Blocking:
    pairs: DataFrame            # l_record < r_record, distinct across rules
    pair_counts: dict[str, int]  # candidate pairs per rule (before de-duplication)
    skipped_blocks: DataFrame   # rule, key, records: blocks over max_block_size, not paired


def block(records: DataFrame, cfg: MatchingSettings) -> Blocking:
    """Candidate pairs from each blocking rule; giant blocks are skipped and reported."""
    left, right = _sides(records)
    frames, counts, skipped = [], {}, []
    for i, rule in enumerate(cfg.blocking):
        name = " & ".join(rule)
        key = F.concat_ws("\u0001", *[F.expr(e) for e in rule])
        valid = reduce(lambda a, b: a & b, [F.expr(e).isNotNull() for e in rule])
        keyed = records.where(valid).select("record", key.alias("bkey"))
        sizes = keyed.groupBy("bkey").agg(F.count(F.lit(1)).alias("n"))
        giant = sizes.where(F.col("n") > cfg.max_block_size)
        skipped.append(giant.select(F.lit(name).alias("rule"), F.col("bkey").alias("key"), F.col("n").alias("records")))
        kept = keyed.join(giant.select("bkey"), "bkey", "left_anti")
        pairs = (kept.alias("a").join(kept.alias("b"), "bkey")
                 .where(F.col("a.record") < F.col("b.record"))
                 .select(F.col("a.record").alias("l_record"), F.col("b.record").alias("r_record"))).localCheckpoint()
        counts[name] = pairs.count()
        frames.append(pairs.withColumn("rule", F.lit(i)))
    union = reduce(DataFrame.unionByName, frames).groupBy("l_record", "r_record").agg(F.min("rule").alias("rule"))
    full = union.join(left, "l_record").join(right, "r_record")
    return Blocking(full, counts, reduce(DataFrame.unionByName, skipped))


def random_pairs(records: DataFrame, n: int, seed: int) -> DataFrame:
    """About ``n`` pairs of two random distinct records (almost all non-matches), for ``u``."""
    total = records.count()
    fraction = min(1.0, math.sqrt(2.0 * n) / max(total, 1) * 1.2) if total else 0.0
    left, right = _sides(records.sample(fraction=fraction, seed=seed))
    return left.crossJoin(right).where(F.col("l_record") < F.col("r_record")).limit(n)


def level_counts(pairs: DataFrame) -> dict[str, np.ndarray]:
    """Per field, the number of pairs at each level (null level excluded)."""
    out = {}
    for f in FIELDS:
        rows = pairs.groupBy(f"{f}_level").count().collect()
        counts = np.zeros(LEVELS[f])
        for r in rows:
            if r[0] is not None and r[0] != NULL:
                counts[int(r[0])] = r["count"]
        out[f] = counts
    return out


def u_probabilities(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Level shares among random pairs, with one pseudo-count per level (no zero u)."""
    return {f: (c + 1.0) / (c.sum() + len(c)) for f, c in counts.items()}


def patterns(pairs: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct level vectors of the pairs and how many pairs have each (small: collected)."""
    cols = [f"{f}_level" for f in FIELDS]
    rows = pairs.groupBy(*cols).count().collect()
    return np.array([[r[c] for c in cols] for r in rows], dtype=int).reshape(-1, len(FIELDS)), \
        np.array([r["count"] for r in rows], dtype=float)


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
    def from_rows(cls, rows: list, prior: float) -> "Parameters":
        m = {f: np.zeros(LEVELS[f]) for f in FIELDS}
        u = {f: np.zeros(LEVELS[f]) for f in FIELDS}
        for r in rows:
            m[r["field"]][r["level"]] = r["m"]
            u[r["field"]][r["level"]] = r["u"]
        return cls(m, u, prior, 0, True)


def initial_m() -> dict[str, np.ndarray]:
    """Start: agreement much likelier among matches (EM moves it from here)."""
    return {f: np.geomspace(0.02, 1.0, LEVELS[f]) / np.geomspace(0.02, 1.0, LEVELS[f]).sum() for f in FIELDS}


def expectation_maximisation(pats: np.ndarray, counts: np.ndarray, u: dict[str, np.ndarray],
                             prior: float = 0.1, max_iter: int = 50, tol: float = 1e-6,
                             m: dict[str, np.ndarray] | None = None) -> Parameters:
    """Fellegi-Sunter EM with ``u`` fixed: the ``m`` probabilities and the match prior."""
    m = {f: v.copy() for f, v in (m or initial_m()).items()}
    lam, converged, iterations = prior, False, 0
    while iterations < max_iter:
        iterations += 1
        log_m = np.zeros(len(pats))
        log_u = np.zeros(len(pats))
        for j, f in enumerate(FIELDS):
            lv = pats[:, j]
            known = lv >= 0
            log_m[known] += np.log(m[f][lv[known]])
            log_u[known] += np.log(u[f][lv[known]])
        a = np.log(lam) + log_m
        b = np.log1p(-lam) + log_u
        p = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))     # P(match | pattern)
        weight = p * counts
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
    """(field, value, tf): the share of records carrying each name value."""
    frames = []
    for f in fields:
        total = records.where(F.col(f).isNotNull()).count() or 1
        frames.append(records.where(F.col(f).isNotNull()).groupBy(F.col(f).alias("value"))
                      .agg((F.count(F.lit(1)) / total).alias("tf")).select(F.lit(f).alias("field"), "value", "tf"))
    return reduce(DataFrame.unionByName, frames)


def random_pair_prior(params: Parameters, candidates: int, records: int) -> float:
    """The chance that two *random* records match: EM's share of matches among the candidates,
    times the candidates, over all record pairs. Scoring with it (not the share among blocked
    pairs, which can be near 1 on small data) keeps the weights conservative, as blocking does not
    add evidence."""
    total = records * (records - 1) / 2
    return float(min(max(params.prior * candidates / total, 1e-12), 0.5)) if total else 1e-12


def score(pairs: DataFrame, params: Parameters, tf: DataFrame | None, tf_fields: list[str],
          prior: float | None = None) -> DataFrame:
    """Match weight (log2 Bayes factor incl. prior) and probability per pair."""
    spark = pairs.sparkSession
    factors = params.bayes_factors()
    rows = [(f, lvl, float(factors[f][lvl]), float(params.m[f][lvl])) for f in FIELDS for lvl in range(LEVELS[f])]
    table = spark.createDataFrame(rows, "field string, level int, bf double, m double")
    out = pairs
    for f in FIELDS:
        bf = F.broadcast(table.where(F.col("field") == f).select(F.col("level").alias(f"{f}_level"),
                                                                    F.col("bf").alias(f"{f}_bf"),
                                                                    F.col("m").alias(f"_{f}_m")))
        out = out.join(bf, f"{f}_level", "left")
        if tf is not None and f in tf_fields:
            # exact agreement on a name: u is that name's own frequency instead of the average
            names = F.broadcast(tf.where(F.col("field") == f).select(F.col("value").alias(f"l_{f}"),
                                                                        F.col("tf").alias(f"_{f}_tf")))
            out = out.join(names, f"l_{f}", "left")
            adjusted = F.log2(F.col(f"_{f}_m") / F.greatest(F.col(f"_{f}_tf"), F.lit(1e-9)))
            out = out.withColumn(f"{f}_bf", F.when((F.col(f"{f}_level") == TF_LEVEL) & F.col(f"_{f}_tf").isNotNull(),
                                                   adjusted).otherwise(F.col(f"{f}_bf"))).drop(f"_{f}_tf")
        out = out.drop(f"_{f}_m")
    p0 = params.prior if prior is None else prior
    weight = F.lit(math.log2(p0 / (1 - p0))) + reduce(lambda a, b: a + b, [F.coalesce(F.col(f"{f}_bf"), F.lit(0.0)) for f in FIELDS])
    return (out.withColumn("match_weight", weight)
            .withColumn("match_probability", F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -F.col("match_weight")))))


def train(spark: SparkSession, records: DataFrame, candidates: DataFrame, cfg: MatchingSettings) -> Parameters:
    """u from random pairs, m and the prior by EM on the candidates' level patterns."""
    u = u_probabilities(level_counts(levels(random_pairs(records, cfg.random_pairs, cfg.seed))))
    pats, counts = patterns(candidates)
    if not len(pats):
        return Parameters(initial_m(), u, 1e-6, 0, False)
    params = expectation_maximisation(pats, counts, u, max_iter=cfg.em_iterations)
    log.info("matching: EM %s after %d iterations on %d patterns (%d pairs); prior %.4f",
             "converged" if params.converged else "stopped", params.iterations, len(pats), int(counts.sum()),
             params.prior)
    return params


def accepted_pair(cfg: MatchingSettings) -> Column:
    vetoed = reduce(lambda a, b: a | b, [F.coalesce(F.expr(v), F.lit(False)) for v in cfg.veto], F.lit(False))
    return (F.col("match_probability") >= cfg.threshold) & ~vetoed


def match_edges(scored: DataFrame, cfg: MatchingSettings) -> DataFrame:
    """Accepted pairs as member—member identity edges (edge columns of ``graph.observed_edges``)."""
    accepted = scored.where(accepted_pair(cfg))
    return accepted.select(F.lit("member").alias("src_type"), F.col("l_record").alias("src_value"),
                           F.lit("member").alias("dst_type"), F.col("r_record").alias("dst_value"),
                           F.lit("matching").alias("origin"), F.lit(1).cast("long").alias("observations"),
                           F.array().cast("array<string>").alias("sources"))


PAIR_COLUMNS = ["l_record", "r_record", "rule", *[f"{f}_level" for f in FIELDS], "match_weight", "match_probability"]


def match_pairs(scored: DataFrame, cfg: MatchingSettings) -> DataFrame:
    """The ``match_pairs`` table: every scored candidate pair, its levels, weight and verdict."""
    return scored.select(*PAIR_COLUMNS, accepted_pair(cfg).alias("accepted"))
