"""Fellegi-Sunter matching: comparison levels, blocking, EM, term frequencies, vetoes."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from pyspark.sql import functions as F

from memberlake.identity import matching as M
from memberlake.settings import MatchingSettings

REC = "record string, first_name string, last_name string, birth_date date, street string, postcode string, city string"
MEMBERS = ("source string, member_id string, first_name string, last_name string, birth_date date, street string, "
           "postcode string, city string")


def _pairs(spark, rows):
    cols = ["record", *M.COLUMNS]
    schema = ", ".join(f"{side}_{c} {'date' if c == 'birth_date' else 'string'}" for side in "lr" for c in cols)
    return spark.createDataFrame(rows, schema)


def _blocking_report(spark, rows, blocking):
    """(candidate pairs, ``blocking_report``) of ``blocking`` on member ``rows``, whose member id
    names the true person."""
    from memberlake.identity.evaluate import blocking_report

    records = M.prepared(spark.createDataFrame(rows, MEMBERS))
    truth = spark.createDataFrame([(f"{s}:{m}", m) for s, m, *_ in rows], "record string, true string")
    pairs = M.block(records, MatchingSettings(blocking=blocking)).pairs.localCheckpoint()
    return pairs, blocking_report(pairs, truth, [" & ".join(r) for r in blocking], len(rows))


def test_comparison_levels_by_hand(spark):
    d = date(1980, 3, 4)
    rows = [
        # exact everything
        ("a", "ann", "lee", d, "1 main st", "02139", "boston", "b", "ann", "lee", d, "1 main st", "02139", "boston"),
        # typo (similar), swapped names, birth day/month swapped, street variant, other postcode, null city
        ("a", "jonathan", "smith", d, "12 main street", "02139", None, "b", "smith", "jonathon", date(1980, 4, 3),
         "12 main stret", "02140", "boston"),
        # different first name, phonetic surname, birth 5 years off (two digits), nulls
        ("a", "maria", "meyer", d, None, None, "x", "b", "peter", "maier", date(1975, 3, 4), "2 elm", None, "y"),
        # first and last name swapped exactly: similar at most, never exact (two people often enough)
        ("a", "donna", "collins", None, None, None, None, "b", "collins", "donna", None, None, None, None),
    ]
    got = [tuple(r[f"{c}_level"] for c in (*M.COLUMNS, "address")) for r in M.levels(_pairs(spark, rows)).collect()]
    # a swap counts at the weaker of its two crossed comparisons: jonathan~jonathon (2), smith=smith (3);
    # address: same street and postcode 3; only a similar street 1 (02139 / 02140 is two edits
    # apart); nothing but a different city 0
    assert got == [(3, 3, 2, 2, 2, 1, 3), (2, 2, 1, 1, 0, -1, 1), (0, 1, 0, -1, -1, 0, 0), (2, 2, -1, -1, -1, -1, -1)]


def test_a_name_written_in_the_other_field_makes_the_first_names_alike_once(spark):
    cases = [  # (left first, last), (right first, last), expected (first, last) levels
        (("lavis", "henry"), ("jordan", "lavis"), (1, 0)),     # left first = right last
        (("fenwick", "william"), ("william", "headon"), (1, 0)),  # left last = right first
        (("anna", "lee"), ("maria", "lee"), (0, 3)),           # a shared surname in its own field: unchanged
        (("donna", "collins"), ("collins", "donna"), (2, 2)),  # a whole swap stays the swap level
        (("lavis", "henry"), ("jordan", "lavs"), (0, 0)),      # a crossed name with a typo: no evidence here
        ((None, "henry"), ("henry", "smith"), (-1, 0)),        # only between records with both names
    ]
    rows = [("a", lf, ll, None, None, None, None, "b", rf, rl, None, None, None, None)
            for (lf, ll), (rf, rl), _ in cases]
    got = [(r.first_name_level, r.last_name_level) for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [want for *_, want in cases]


def test_street_number_and_name_compared_apart_and_postcodes_within_one_edit(spark):
    base = ("a", "ann", "lee", None)
    cases = [  # (left street, postcode), (right ...), expected (street, postcode, address) levels
        (("18 richards s treet", "2230"), ("18 richards street", "9999"), (2, 0, 3)),  # same number, same letters
        (("tubb-place", "6185"), ("tubb place", "9999"), (2, 0, 3)),          # no numbers, same letters
        (("tubb place", "6185"), ("15 tubb place", "6158"), (1, 1, 2)),       # a number left out; two digits swapped
        (("73 b y n o e place", "2649"), ("73 bynoe plice", "2640"), (1, 1, 2)),  # same number, similar name; a digit mistyped
        (("7 rhosewyn", "2649"), ("73 bynoe place", "2640"), (0, 1, 0)),      # other street: a postcode one edit away alone is no evidence
        (("12 main st", "2649"), ("14 main st", "2694"), (1, 1, 2)),          # whole street similar (as before)
        (("12 elm", "1234"), ("12 oak", "1243"), (0, 1, 0)),                  # same number, other street name
        (("1 elm", "2121"), ("1 elm", "1212"), (2, 0, 3)),                    # 2121 / 1212: no single swap
        (("9 oak", "2000"), ("9 oak", "20001"), (2, 1, 3)),                   # a digit added
        (("9 oak", "200"), ("9 oak", None), (2, -1, 3)),
    ]
    rows = [(*base, ls, lp, "x", "b", "ann", "lee", None, rs, rp, "y") for (ls, lp), (rs, rp), _ in cases]
    got = [(r.street_level, r.postcode_level, r.address_level) for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [want for *_, want in cases]


def test_two_adjacent_letters_of_a_name_swapped_are_similar(spark):
    cases = [  # left, right, expected name level
        ("burman", "buramn", 2),      # Levenshtein: two edits, 0.67 similar, other soundex: was 0
        ("hearn", "heanr", 2),
        ("cooper", "coopre", 2),      # last two letters
        ("rudnle", "rundle", 2),
        ("anna", "anan", 2),          # a swap at the end of a short name
        ("reid", "reid", 3),
        ("mark", "mkar", 0),          # two letters moved, not one adjacent swap (other soundex too)
        ("abcd", "badc", 0),          # two swaps
        ("aab", "aab", 3),
        ("lucas", "lucsa", 2),
    ]
    rows = [("a", lf, "x", None, None, None, None, "b", rf, "y", None, None, None, None) for lf, rf, _ in cases]
    got = [r.first_name_level for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [want for *_, want in cases]


def test_names_alike_by_jaro_winkler_when_they_share_their_first_letter(spark):
    """Jaro-Winkler (matching letters within half the longer length, transpositions, a bonus
    for shared leading letters) beside Levenshtein and soundex. commons-lang3's variant counts
    every shared leading letter, not Winkler's first four, and rounds to two decimals."""
    cases = [  # left, right, expected level of both the first and the last name; JW by hand
        # m = 7 of 8 letters, no transposition, prefix "britt": J = (7/8 + 7/8 + 1)/3 = 0.917,
        # JW = 0.917 + 5 * 0.1 * 0.083 = 0.96 (0.95 with four letters); Levenshtein 0.75, same
        # soundex: was 1
        ("brittany", "brittney", 2),
        # J = (3/3 + 3/4 + 1)/3 = 0.917, JW = 0.917 + 2 * 0.1 * 0.083 = 0.93: was 1
        ("jon", "john", 2),
        # m = 5 of 6, J = 0.889, prefix "hann": JW 0.93; Levenshtein 0.67, H500 / H520: was 0
        ("hannah", "hannja", 2),
        # m = 4 ("a s h e"), J = (4/5 + 4/5 + 1)/3 = 0.867, prefix "as": JW 0.89: alike, was 0
        ("asche", "asher", 1),
        # JW 0.89, but the first letters differ: a name inside another, not a typo
        ("andrea", "sandra", 0),
        # m = 4 of 5 and 8, J = 0.767, prefix "di": JW 0.81, below 0.88
        ("dixon", "dicksonx", 0),
        ("ann", "ann", 3),
    ]
    rows = [("a", lf, lf, None, None, None, None, "b", rf, rf, None, None, None, None) for lf, rf, _ in cases]
    rows.append(("a", "ann", None, None, None, None, None, "b", None, "ann", None, None, None, None))
    got = [(r.first_name_level, r.last_name_level) for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [(want, want) for *_, want in cases] + [(M.NULL, M.NULL)]
    # the similarity itself, as the comparison reads it (two decimals)
    sims = _pairs(spark, rows).select(M.jaro_winkler(F.col("l_first_name"), F.col("r_first_name")).alias("jw")).collect()
    assert [r.jw for r in sims] == [0.96, 0.93, 0.93, 0.89, None, 0.81, None, None]


def test_birth_dates_with_one_digit_mistyped_or_two_transposed_are_near(spark):
    base = ("a", "ann", "lee")
    cases = [  # left, right, expected birth_date level
        (date(1927, 4, 28), date(1927, 7, 28), 1),    # one digit of the month
        (date(1985, 3, 12), date(1958, 3, 12), 1),    # two adjacent digits of the year transposed
        (date(1985, 3, 12), date(1995, 3, 12), 1),    # year off by one digit
        (date(1985, 3, 12), date(1985, 3, 21), 1),    # day digits transposed (and within a month)
        (date(1980, 3, 4), date(1990, 6, 4), 0),      # two digits apart, not a transposition
        (date(1985, 3, 12), date(1958, 3, 21), 0),    # two transpositions
        # 19901010 / 19900101: two edits, the same digits and a crossed adjacent pair ("10" / "01"),
        # but no single swap turns one into the other
        (date(1990, 10, 10), date(1990, 1, 1), 0),
        (date(1990, 10, 10), date(1990, 1, 10), 1),   # month digits swapped: one swap
        (date(1985, 3, 12), date(1985, 3, 12), 2),
    ]
    rows = [(*base, left, None, None, None, "b", "ann", "lee", right, None, None, None) for left, right, _ in cases]
    got = [r.birth_date_level for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [want for *_, want in cases]


def test_levels_read_per_record_values_as_they_would_compute_them_per_pair(spark):
    """``block`` and ``random_pairs`` carry each record's sounds, street parts and birth digits;
    hand-made pairs get them derived per pair: the levels must not depend on which. Also a street
    longer than the bounded Levenshtein reaches: 9 edits on 50 characters is still 0.82 similar."""
    long_street = "12 " + "abcdefghij" * 4 + "klmnopq"                 # 50 characters
    typos = "12 " + "xbcdefghij" * 4 + "xxxxxpq"                       # 9 substitutions
    records = spark.createDataFrame([
        ("a", "jonathan", "smith", date(1980, 3, 4), "12 main street", "02139", "boston"),
        ("b", "smith", "jonathon", date(1980, 4, 3), "12 main stret", "02140", "boston"),
        ("c", "burman", "ann", None, long_street, "2000", None),
        ("d", "buramn", "anne", date(1908, 3, 4), typos, "2000", None),
        ("e", None, "meyer", date(1908, 4, 3), "tubb place", None, "x"),
        ("f", "peter", "maier", None, "15 tubb place", "6158", "y"),
    ], REC)
    left, right = M._sides(records)
    assert M.DERIVED[0] in [c[2:] for c in left.columns]
    carried = left.crossJoin(right).where("l_record < r_record")
    bare = carried.select(*[c for c in carried.columns if c[2:] not in M.DERIVED])
    key = ["l_record", "r_record"]
    a = sorted(tuple(r) for r in M.levels(carried).select(*key, *M.LEVEL_COLUMNS).collect())
    b = sorted(tuple(r) for r in M.levels(bare).select(*key, *M.LEVEL_COLUMNS).collect())
    assert a == b and len(a) == 15
    assert set(M.levels(carried).columns) == set(bare.columns) | set(M.LEVEL_COLUMNS)
    c_d = next(r for r in a if r[:2] == ("c", "d"))
    assert c_d[2 + M.LEVEL_COLUMNS.index("street_level")] == 1      # 1 - 9/50 = 0.82
    assert c_d[2 + M.LEVEL_COLUMNS.index("first_name_level")] == 2  # one adjacent swap


def test_address_levels_rank_street_over_postcode_over_city(spark):
    base = ("a", "ann", "lee", None)
    cases = [  # (left street, postcode, city), (right ...), expected address level
        (("1 elm", "111", "x"), ("1 elm", "999", "y"), 3),      # same street, postcode typo: one address
        (("1 elm st", "111", "x"), ("1 elm s", "111", "x"), 3),  # similar street in one postcode
        (("1 elm", "111", "x"), ("9 oak", "111", "x"), 2),      # same postcode, other street
        (("1 elm", "111", "x"), ("9 oak", "222", "x"), 1),      # same city only
        (("1 elm", "111", "x"), ("9 oak", "222", None), 0),     # nothing shared
        ((None, None, None), ("9 oak", "222", "x"), -1),        # nothing to compare
    ]
    rows = [(*base, *left, "b", "ann", "lee", None, *right) for left, right, _ in cases]
    got = [r.address_level for r in M.levels(_pairs(spark, rows)).collect()]
    assert got == [want for *_, want in cases]


def test_blocking_counts_pairs_per_rule_and_skips_giant_blocks(spark):
    rows = [(f"r{i}", "ann", "lee", None, None, "11111", "x") for i in range(5)]          # a block of 5
    rows += [("s1", "bob", "kay", None, None, "22222", "y"), ("s2", "bob", "kay", None, None, "22222", "y")]
    rows += [("t1", "cat", "ash", None, None, "33333", "z"), ("t2", "cy", "orr", None, None, None, "z")]  # rule 2 only
    records = spark.createDataFrame(rows, REC)
    cfg = MatchingSettings(blocking=[["postcode"], ["substring(first_name, 1, 1)", "city"]], max_block_size=4)
    b = M.block(records, cfg)
    # the 5-block is skipped by both rules
    assert M.rule_counts(b.pairs, cfg.blocking) == (2, {"postcode": 1, "substring(first_name, 1, 1) & city": 2})
    assert [(r.rule, r.records) for r in b.skipped_blocks.collect()] == [("postcode", 5),
                                                                         ("substring(first_name, 1, 1) & city", 5)]
    got = sorted((r.l_record, r.r_record, r.rule, r.rules, r.l_first_name, r.r_city) for r in b.pairs.collect())
    assert got == [("s1", "s2", 0, 3, "bob", "y"), ("t1", "t2", 1, 2, "cat", "z")]   # s1-s2 once, though both rules form it


def test_random_pairs_depend_on_the_records_not_on_their_order_or_partitions(spark):
    rows = [(f"r{i:03d}", f"n{i % 17}", f"s{i % 13}", None, None, None, None) for i in range(400)]
    one = spark.createDataFrame(rows, REC).coalesce(1)
    many = spark.createDataFrame(list(reversed(rows)), REC).repartition(7)
    got = [sorted((r.l_record, r.r_record) for r in M.random_pairs(df, 3000, 42).collect()) for df in (one, many)]
    assert got[0] == got[1]
    assert 2000 < len(got[0]) < 4500 and all(a < b for a, b in got[0])         # about n distinct ordered pairs
    assert len(set(got[0])) == len(got[0])
    assert got[0] != sorted((r.l_record, r.r_record) for r in M.random_pairs(one, 3000, 7).collect())


def test_rule_fields_name_the_scored_fields_a_rule_blocks_on():
    assert M.rule_fields(["postcode", "substring(last_name, 1, 3)"]) == {"address", "last_name"}
    assert M.rule_fields(["soundex(last_name)", "city", "substring(first_name, 1, 1)"]) == {
        "address", "last_name", "first_name"}
    assert M.rule_fields(["birth_date"]) == {"birth_date"}


def _toy_model():
    """m rising with agreement and u its mirror: a mixture EM can recover."""
    true_m = {f: np.linspace(1, 6, M.LEVELS[f]) ** 3 for f in M.FIELDS}
    true_m = {f: v / v.sum() for f, v in true_m.items()}
    return true_m, {f: v[::-1].copy() for f, v in true_m.items()}


def _mixture(rng, true_m, u, n, lam, forced):
    """Level patterns of n pairs, a share lam of them matches, field ``forced[0]`` fixed at ``forced[1]``."""
    is_match = rng.random(n) < lam
    pats = np.column_stack([np.where(is_match, rng.choice(M.LEVELS[f], n, p=true_m[f]),
                                     rng.choice(M.LEVELS[f], n, p=u[f])) for f in M.FIELDS])
    pats[:, M.FIELDS.index(forced[0])] = forced[1]
    return pats, is_match.sum()


def test_em_sessions_leave_out_blocked_fields_and_recover_m_and_the_share_of_matches():
    # Within a block the blocked field agrees for every pair; one EM over all candidates takes
    # that agreement for evidence and calls nearly every candidate a match.
    rng = np.random.default_rng(1)
    true_m, u = _toy_model()
    by_address, k1 = _mixture(rng, true_m, u, 30_000, 0.1, ("address", 3))
    by_birth, k2 = _mixture(rng, true_m, u, 30_000, 0.2, ("birth_date", 2))
    levels = np.vstack([by_address, by_birth])
    rules = np.r_[np.full(30_000, 1), np.full(30_000, 2)]
    pats = M.Patterns(levels, rules, np.zeros(len(rules), bool), np.ones(len(rules)))
    share = (k1 + k2) / 60_000
    whole = M.expectation_maximisation(pats.levels, pats.counts, u, max_iter=500)
    assert whole.prior > share + 0.2                       # the blocked agreement inflates it
    params = M.fit(pats, u, [["postcode"], ["birth_date", "substring(first_name, 1, 1)"]], max_iter=500)
    assert params.prior == pytest.approx(share, abs=0.02)
    for f in M.FIELDS:
        assert np.abs(params.m[f] - true_m[f]).max() < 0.03, f


def test_the_default_tolerance_stops_em_with_weights_of_a_strict_run_when_nearly_all_candidates_match():
    # febrl1's shape: 98% of the candidates are matches (there a session crept on at 1e-6 for
    # over a thousand iterations without its weights moving by 0.1 bit)
    rng = np.random.default_rng(4)
    true_m, u = _toy_model()
    levels, _ = _mixture(rng, true_m, u, 600, 0.98, ("address", 3))
    uniq, counts = np.unique(levels, axis=0, return_counts=True)
    pats = M.Patterns(uniq, np.ones(len(uniq), dtype=np.int64), np.zeros(len(uniq), bool), counts.astype(float))
    cfg = MatchingSettings()
    quick = M.fit(pats, u, [["postcode"]], cfg.em_iterations, cfg.em_tolerance)
    strict = M.fit(pats, u, [["postcode"]], 5_000, 1e-9)
    assert quick.converged and quick.iterations <= cfg.em_iterations
    assert quick.prior == pytest.approx(strict.prior, abs=0.002)
    for f in ("first_name", "last_name", "birth_date"):
        assert np.abs(np.log2(quick.m[f] / strict.m[f])).max() < 0.1, f    # weights within 0.1 bit


def test_match_share_counts_vetoed_patterns_as_non_matches():
    u = {f: np.full(M.LEVELS[f], 1.0 / M.LEVELS[f]) for f in M.FIELDS}
    m = {f: np.r_[np.full(M.LEVELS[f] - 1, 0.01), 1.0] / (1.0 + 0.01 * (M.LEVELS[f] - 1)) for f in M.FIELDS}
    top = [M.LEVELS[f] - 1 for f in M.FIELDS]
    pats = M.Patterns(np.array([top, top, [0, 0, 0, 0]]), np.ones(3, dtype=np.int64),
                      np.array([False, True, False]), np.array([30.0, 50.0, 20.0]))
    # agreement everywhere is overwhelming evidence, but 50 of those pairs are vetoed
    assert M.match_share(pats, m, u) == pytest.approx(0.3, abs=0.005)


def test_em_recovers_m_and_the_prior_from_a_hand_built_mixture():
    rng = np.random.default_rng(0)
    true_m, u = _toy_model()
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


def test_rare_names_weigh_more_than_common_ones_and_households_stay_apart_by_evidence(spark):
    d = date(1990, 1, 1)
    people = [("web", f"m{i}", "john", "smith", None, None, "9", "c") for i in range(8)]      # a common name
    people += [("web", "q1", "ann", "quennell", d, "1 elm", "1", "a"), ("app", "q2", "ann", "quennell", d, "1 elm", "1", "a"),
               ("web", "s1", "ann", "smith", d, "1 elm", "1", "a"), ("app", "s2", "ann", "smith", d, "1 elm", "1", "a"),
               ("web", "h1", "zoe", "smith", date(1991, 6, 2), "1 elm", "1", "a")]             # Ann Smith's household
    records = M.prepared(spark.createDataFrame(people, MEMBERS))
    cfg = MatchingSettings(blocking=[["postcode"]], threshold=0.5)
    assert cfg.veto == []                                          # no hard stop by default
    pairs = M.levels(M.block(records, cfg).pairs)
    # m and u as EM and random pairs give them: a different first name or birth date is rare
    # between two records of one person, a shared address rare between two people
    m = {"first_name": np.array([0.02, 0.03, 0.05, 0.9]), "last_name": np.array([0.01, 0.01, 0.08, 0.9]),
         "birth_date": np.array([0.02, 0.03, 0.95]), "address": np.array([0.05, 0.05, 0.1, 0.8])}
    u = {"first_name": np.array([0.9, 0.05, 0.04, 0.01]), "last_name": np.array([0.9, 0.05, 0.04, 0.01]),
         "birth_date": np.array([0.97, 0.02, 0.01]), "address": np.array([0.9, 0.08, 0.019, 0.001])}
    params = M.Parameters(m, u, 0.5, 1, True)
    scored = M.score(pairs, params, M.term_frequencies(records, ["last_name"]), ["last_name"])
    w = {(r.l_record, r.r_record): r.last_name_bf for r in scored.collect()}
    assert w[("app:q2", "web:q1")] > w[("app:s2", "web:s1")]       # quennell (1 of 13) beats smith (11 of 13)
    accepted = {(r.src_value, r.dst_value) for r in M.match_edges(scored, cfg).collect()}
    assert ("app:s2", "web:s1") in accepted and ("app:q2", "web:q1") in accepted
    # Zoe shares Ann's surname and address: log2(0.8/0.001) = +9.6 bits for the address and +0.1
    # for "smith" (11 of 13 records), against log2(0.02/0.9) = -5.5 for the first name and
    # log2(0.02/0.97) = -5.6 for the birth date: -1.4 bits, probability 0.27, below the threshold
    household = {(r.l_record, r.r_record): r.match_probability for r in scored.collect() if "web:h1" in (r.l_record, r.r_record)}
    assert household[("web:h1", "web:s1")] == pytest.approx(0.27, abs=0.02)
    assert not any("web:h1" in pair for pair in accepted)
    # the same birth date instead (a typo'd first name, not a household member) outweighs the name
    typo = M.score(M.levels(M.block(M.prepared(spark.createDataFrame(
        [("web", "s1", "ann", "smith", d, "1 elm", "1", "a"), ("web", "t1", "anxx", "smith", d, "1 elm", "1", "a")],
        MEMBERS)), cfg).pairs), params, None, [])
    assert typo.first().first_name_level == 0 and typo.first().match_probability > 0.99
    # a configured veto still stops a pair whatever its weight
    vetoed = MatchingSettings(blocking=[["postcode"]], threshold=0.5, veto=["first_name_level = 0"])
    assert M.match_edges(typo, vetoed).count() == 0 and M.match_edges(typo, cfg).count() == 1


def test_candidates_keep_ids_levels_and_only_agreeing_names_and_score_as_the_full_pairs(spark):
    d = date(1990, 1, 1)
    records = M.prepared(spark.createDataFrame([
        ("web", "a", "ann", "smith", d, "1 elm", "1", "x"), ("app", "b", "ann", "smith", d, "1 elm", "1", "x"),
        ("pos", "c", "anne", "smith", None, "1 elm st", "1", "x"), ("crm", "d", "zoe", "smyth", d, "2 oak", "1", "y")],
        MEMBERS))
    cfg = MatchingSettings(blocking=[["postcode"]], threshold=0.5)
    pairs = M.block(records, cfg).pairs
    compact = M.candidate_levels(pairs, ["first_name", "last_name"])
    assert compact.columns == ["l_record", "r_record", "rule", "rules", *[f"{c}_level" for c in M.COLUMNS],
                               "address_level", "first_name_tf_key", "last_name_tf_key"]
    rows = {(r.l_record, r.r_record): r for r in compact.collect()}
    assert len(rows) == 6
    # a name's hash is kept only where both sides carry it exactly (the term-frequency lookup's
    # case), and no name itself (match_pairs keeps these columns)
    ann, smith = (spark.range(1).select(F.xxhash64(F.lit(v))).first()[0] for v in ("ann", "smith"))
    assert (rows[("app:b", "web:a")].first_name_tf_key, rows[("app:b", "web:a")].last_name_tf_key) == (ann, smith)
    assert (rows[("app:b", "pos:c")].first_name_tf_key, rows[("app:b", "pos:c")].last_name_tf_key) == (None, smith)
    assert (rows[("crm:d", "web:a")].first_name_tf_key, rows[("crm:d", "web:a")].last_name_tf_key) == (None, None)
    m = {"first_name": np.array([0.02, 0.03, 0.05, 0.9]), "last_name": np.array([0.01, 0.01, 0.08, 0.9]),
         "birth_date": np.array([0.02, 0.03, 0.95]), "address": np.array([0.05, 0.05, 0.1, 0.8])}
    u = {"first_name": np.array([0.9, 0.05, 0.04, 0.01]), "last_name": np.array([0.9, 0.05, 0.04, 0.01]),
         "birth_date": np.array([0.97, 0.02, 0.01]), "address": np.array([0.9, 0.08, 0.019, 0.001])}
    params = M.Parameters(m, u, 0.1, 1, True)
    tf = M.term_frequencies(records, ["first_name", "last_name"])
    full = {(r.l_record, r.r_record): r.match_weight
            for r in M.score(M.levels(pairs), params, tf, ["first_name", "last_name"]).collect()}
    scored = {(r.l_record, r.r_record): r for r in M.score(compact, params, tf, ["first_name", "last_name"]).collect()}
    small = {k: r.match_weight for k, r in scored.items()}
    assert small.keys() == full.keys() and all(small[k] == pytest.approx(full[k]) for k in full)
    # an exact "smith" (3 of 4 records) weighs log2(m / tf) = log2(0.9 / 0.75), not log2(0.9 / 0.01)
    bf = {k: r.last_name_bf for k, r in scored.items()}
    assert bf[("app:b", "web:a")] == pytest.approx(np.log2(0.9 / 0.75))
    assert bf[("crm:d", "web:a")] == pytest.approx(np.log2(0.08 / 0.04))     # smyth ~ smith: similar, no tf


def test_saved_parameters_of_other_fields_are_not_reused():
    rows = [{"field": f, "level": lvl, "m": 0.5, "u": 0.5} for f in M.FIELDS for lvl in range(M.LEVELS[f])]
    params = M.Parameters.from_rows(rows, 0.01)
    assert params is not None and params.m["address"].tolist() == [0.5] * M.LEVELS["address"]
    # parameters saved by the six-field model (street, postcode and city scored apart): retrain
    old = [r for r in rows if r["field"] != "address"] + [{"field": "street", "level": 0, "m": 0.1, "u": 0.9}]
    assert M.Parameters.from_rows(old, 0.01) is None


def test_default_blocking_pairs_records_with_one_typo_in_any_field(spark):
    """Eight persons, each as a clean record and a copy with one error: a typo in the first letter
    of a name, a transposed birth year, a misspelt street, postcode or city, swapped names, a
    surname typo with no birth date. The default rules form every one of the eight true pairs."""
    d = date(1980, 3, 4)
    clean = [("ann", "lee", d, "12 main st", "02139", "boston"), ("kim", "park", date(1975, 6, 1), "3 oak ave", "10001", "york"),
             ("raj", "shah", date(1975, 1, 9), "9 bay rd", "30301", "atlanta"), ("eva", "moss", date(1990, 2, 2), "7 elm rd", "60601", "chicago"),
             ("tom", "hill", date(1960, 5, 5), "5 pine st", "94103", "oakland"), ("liu", "wang", date(1988, 8, 8), "8 lake dr", "98101", "seattle"),
             ("donna", "collins", date(1971, 6, 5), "1 park ln", "85029", "phoenix"), ("joe", "smith", None, "44 high st", "73301", "austin")]
    errors = [("enn", "lee", d, "12 main st", "02139", "boston"), ("kim", "oark", date(1975, 6, 1), "3 oak ave", "10001", "york"),
              ("raj", "shah", date(1957, 1, 9), "9 bay rd", "30301", "atlanta"), ("eva", "moss", date(1990, 2, 2), "7 elm rdd", "60601", "chicago"),
              ("tom", "hill", date(1960, 5, 5), "5 pine st", "94130", "oakland"), ("liu", "wang", date(1988, 8, 8), "8 lake dr", "98101", "seatle"),
              ("collins", "donna", date(1971, 6, 5), "1 park ln", "85029", "phoenix"), ("joe", "xmith", None, "44 high st", "73301", "austin")]
    rows = [("a", f"p{i}", *r) for i, r in enumerate(clean)] + [("b", f"p{i}", *r) for i, r in enumerate(errors)]
    rows += [("c", f"x{i}", "ann", "lee", date(1950 + i, 1, 1), f"{i} other st", "02139", "boston") for i in range(3)]
    cfg = MatchingSettings()
    _, report = _blocking_report(spark, rows, cfg.blocking)
    assert (report["true_pairs"], report["true_pairs_found"], report["recall"]) == (8, 8, 1.0)
    # the three other Ann Lees of 02139 are candidates of the first pair's rule, not matches
    assert report["candidates"] > report["true_pairs_found"]
    assert report["reduction_ratio"] == pytest.approx(1 - report["candidates"] / (19 * 18 / 2))
    assert sum(r["only_here"] for r in report["rules"]) <= 8
    # without the rules on the street, the surname typo with no birth date is lost: only they form it
    fewer = [r for r in cfg.blocking if not any("street" in e for e in r)]
    assert 0 < len(fewer) < len(cfg.blocking)
    _, without = _blocking_report(spark, rows, fewer)
    assert (without["true_pairs_found"], without["recall"]) == (7, 7 / 8)


def test_address_rules_survive_a_split_street_name_and_swapped_misspelt_names(spark):
    """Febrl-style pairs with errors in three fields, which the rules on one field kind each miss:
    a space typed into the street name with a new first name, a postcode and a city typo (the whole
    address, letters only); names swapped with a typo in one, a new street number and city (street
    name + both initials in either order + the postcode's region). A record without a first name
    has no initials key, and the street key keeps non-Latin letters."""
    rows = [("a", "p0", "edward", "selman", None, "42 medical centre", "2324", "north rocks"),
            ("b", "p0", "stephanie", "selmann", None, "42 medical c entre", "3224", "nroth rocks"),
            ("a", "p1", "chelsea", "ayres", None, "18 pokana circuit", "4131", "keilor east"),
            ("b", "p1", "ayres", "chelsra", None, "81 pokana circuit", "4024", "keilor"),
            ("a", "n0", None, "ayres", None, "18 pokana circuit", "4999", "perth"),
            # initials "aa" on the same street and region: n0 would meet it if a missing first
            # name fell back to the surname's initial twice
            ("b", "n1", "anna", "adams", None, "7 pokana circuit", "4777", "sydney"),
            ("a", "z0", "伟", "王", None, "12 北京路", "1000", "上海"),
            ("b", "z0", "小伟", "汪", None, "12 北京 路", "2000", "上海市")]
    cfg = MatchingSettings()
    pairs, report = _blocking_report(spark, rows, cfg.blocking)
    assert (report["true_pairs"], report["true_pairs_found"]) == (3, 3)
    by_rule = {r["rule"]: r for r in report["rules"]}
    whole, initials, number_and_surname = (" & ".join(cfg.blocking[i]) for i in (9, 10, 13))
    assert "^([0-9]+)" in whole and "least(left(first_name" in initials and "soundex(last_name)" in number_and_surname
    # the whole address forms two; the house number with the surname's sound (S455) also forms
    # the first (selman / selmann at 42), so the whole address alone forms one
    assert (by_rule[whole]["true_pairs"], by_rule[whole]["only_here"]) == (2, 1)
    assert by_rule[number_and_surname]["true_pairs"] == 1 and by_rule[initials]["only_here"] == 1
    # the record without a first name shares the address of p1's first record: paired by the whole
    # address only, never by the initials rule (not with n1)
    keyed = pairs.where((F.col("l_record") == "a:n0") | (F.col("r_record") == "a:n0")).collect()
    assert [{r.l_record, r.r_record} for r in keyed] == [{"a:n0", "a:p1"}]
    # the nine rules before the two address rules form none of them
    assert sum(by_rule[" & ".join(r)]["true_pairs"] for r in cfg.blocking[:9]) == 0


def test_street_name_in_postcode_house_number_and_birth_date_in_city_rules_form_pairs_the_others_miss(spark):
    """Pairs with errors in three fields that only the four rules added on 2026-12-07 form: a new
    first name, a surname typo and a city typo on one street name within one postcode; the same
    first name at one house number with the surname's first letter, the postcode and the street
    changed; a birth date in one city with both names replaced and the street and postcode changed."""
    rows = [("a", "s0", "mark", "bolton", None, "31 wattle grove", "3044", "pascoe vale"),
            ("b", "s0", "peter", "bloton", None, "wattlegrove", "3044", "pascoe vael"),
            ("a", "h0", "nora", "kellerman", None, "7 ash street", "5061", "unley"),
            ("b", "h0", "nora", "gellerman", None, "7 oak avenue", "5016", "unlye"),
            ("a", "d0", "rita", "vance", date(1931, 5, 17), "12 hill road", "2600", "yass"),
            ("b", "d0", "joan", "prior", date(1931, 5, 17), "90 hil road", "2620", "yass")]
    cfg = MatchingSettings()
    _, report = _blocking_report(spark, rows, cfg.blocking)
    assert (report["true_pairs"], report["true_pairs_found"]) == (3, 3)
    by_rule = {r["rule"]: r for r in report["rules"]}
    street_postcode, number_first, number_surname, birth_city = (" & ".join(r) for r in cfg.blocking[11:15])
    assert "postcode" in street_postcode and "first_name" in number_first and "city" in birth_city
    assert [by_rule[r]["only_here"] for r in (street_postcode, number_first, birth_city)] == [1, 1, 1]
    # kellerman / gellerman: another first letter, another sound (K465 / G465), so neither the
    # names by sound nor the house number with the surname's sound pairs them
    assert by_rule[number_surname]["true_pairs"] == 0
    assert sum(by_rule[" & ".join(r)]["true_pairs"] for r in cfg.blocking[:11]) == 0
