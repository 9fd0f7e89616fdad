"""Fellegi-Sunter matching: comparison levels, blocking, EM, term frequencies, vetoes."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from memberlake.identity import matching as M
from memberlake.settings import MatchingSettings

REC = "record string, first_name string, last_name string, birth_date date, street string, postcode string, city string"
MEMBERS = ("source string, member_id string, first_name string, last_name string, birth_date date, street string, "
           "postcode string, city string")


def _pairs(spark, rows):
    cols = ["record", *M.FIELDS]
    schema = ", ".join(f"{side}_{c} {'date' if c == 'birth_date' else 'string'}" for side in "lr" for c in cols)
    return spark.createDataFrame(rows, schema)


def test_comparison_levels_by_hand(spark):
    d = date(1980, 3, 4)
    rows = [
        # exact everything
        ("a", "ann", "lee", d, "1 main st", "02139", "boston", "b", "ann", "lee", d, "1 main st", "02139", "boston"),
        # typo (similar), swapped names, birth day/month swapped, street variant, other postcode, null city
        ("a", "jonathan", "smith", d, "12 main street", "02139", None, "b", "smith", "jonathon", date(1980, 4, 3),
         "12 main stret", "02140", "boston"),
        # different first name, phonetic surname, birth 2 years off, nulls
        ("a", "maria", "meyer", d, None, None, "x", "b", "peter", "maier", date(1982, 3, 4), "2 elm", None, "y"),
    ]
    got = [tuple(r[f"{f}_level"] for f in M.FIELDS) for r in M.levels(_pairs(spark, rows)).collect()]
    # a swap counts at the weaker of its two crossed comparisons: jonathan~jonathon (2), smith=smith (3)
    assert got == [(3, 3, 2, 2, 1, 1), (2, 2, 1, 1, 0, -1), (0, 1, 0, -1, -1, 0)]


def test_blocking_counts_pairs_per_rule_and_skips_giant_blocks(spark):
    rows = [(f"r{i}", "ann", "lee", None, None, "11111", "x") for i in range(5)]          # a block of 5
    rows += [("s1", "bob", "kay", None, None, "22222", "y"), ("s2", "bob", "kay", None, None, "22222", "y")]
    records = spark.createDataFrame(rows, REC)
    cfg = MatchingSettings(blocking=[["postcode"], ["substring(first_name, 1, 1)", "city"]], max_block_size=4)
    b = M.block(records, cfg)
    assert b.pair_counts == {"postcode": 1, "substring(first_name, 1, 1) & city": 1}   # the 5-block is skipped
    assert [(r.rule, r.records) for r in b.skipped_blocks.collect()] == [("postcode", 5),
                                                                         ("substring(first_name, 1, 1) & city", 5)]
    assert sorted((r.l_record, r.r_record) for r in b.pairs.collect()) == [("s1", "s2")]


def test_em_recovers_m_and_the_prior_from_a_hand_built_mixture():
    rng = np.random.default_rng(0)
    true_m = {f: np.linspace(1, 6, M.LEVELS[f]) ** 3 for f in M.FIELDS}
    true_m = {f: v / v.sum() for f, v in true_m.items()}
    u = {f: v[::-1].copy() for f, v in true_m.items()}
    n, lam = 40_000, 0.3
    is_match = rng.random(n) < lam
    pats = np.column_stack([np.where(is_match, rng.choice(M.LEVELS[f], n, p=true_m[f]),
                                     rng.choice(M.LEVELS[f], n, p=u[f])) for f in M.FIELDS])
    uniq, counts = np.unique(pats, axis=0, return_counts=True)
    params = M.expectation_maximisation(uniq, counts.astype(float), u, max_iter=500, tol=1e-8)
    assert params.converged
    assert params.prior == pytest.approx(lam, abs=0.02)
    for f in M.FIELDS:
        assert np.abs(params.m[f] - true_m[f]).max() < 0.03, f


def test_rare_names_weigh_more_than_common_ones_and_households_are_vetoed(spark):
    d = date(1990, 1, 1)
    people = [("web", f"m{i}", "john", "smith", None, None, "9", "c") for i in range(8)]      # a common name
    people += [("web", "q1", "ann", "quennell", d, "1 elm", "1", "a"), ("app", "q2", "ann", "quennell", d, "1 elm", "1", "a"),
               ("web", "s1", "ann", "smith", d, "1 elm", "1", "a"), ("app", "s2", "ann", "smith", d, "1 elm", "1", "a"),
               ("web", "h1", "zoe", "smith", date(1991, 6, 2), "1 elm", "1", "a")]             # Ann Smith's household
    records = M.prepared(spark.createDataFrame(people, MEMBERS))
    cfg = MatchingSettings(blocking=[["postcode"]], threshold=0.5)
    pairs = M.levels(M.block(records, cfg).pairs)
    m = {f: np.full(M.LEVELS[f], 1.0 / M.LEVELS[f]) for f in M.FIELDS}
    m["last_name"] = np.array([0.01, 0.01, 0.08, 0.9])
    u = {f: np.full(M.LEVELS[f], 1.0 / M.LEVELS[f]) for f in M.FIELDS}
    u["last_name"] = np.array([0.9, 0.05, 0.04, 0.01])
    params = M.Parameters(m, u, 0.5, 1, True)
    scored = M.score(pairs, params, M.term_frequencies(records, ["last_name"]), ["last_name"])
    w = {(r.l_record, r.r_record): r.last_name_bf for r in scored.collect()}
    assert w[("app:q2", "web:q1")] > w[("app:s2", "web:s1")]       # quennell (1 of 13) beats smith (11 of 13)
    accepted = {(r.src_value, r.dst_value) for r in M.match_edges(scored, cfg).collect()}
    assert ("app:s2", "web:s1") in accepted and ("app:q2", "web:q1") in accepted
    assert not any("web:h1" in pair for pair in accepted)          # different first name and birth date
