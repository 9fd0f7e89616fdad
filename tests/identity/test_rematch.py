"""Incremental matching equals a full run: candidates, levels, scores and accepted pairs."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from memberlake.identity import matching as M
from memberlake.identity.rematch import changed_records, rematch
from memberlake.settings import MatchingSettings

REC = "record string, first_name string, last_name string, birth_date date, street string, postcode string, city string"
D80, D75 = date(1980, 1, 1), date(1975, 5, 5)

# The last run's records. Postcode 6000 holds four records (at the size limit of 4), postcode
# 7000 five (a giant block, not paired by postcode).
BEFORE = [
    ("web:a", "ann", "smith", D80, "1 high st", "2000", "sydney"),
    ("app:b", "ann", "smith", D80, "1 high st", "2000", "sydney"),
    ("pos:c", "anne", "smyth", D80, "1 high st", "2000", "sydney"),
    ("crm:d", "bob", "jones", D75, "9 low rd", "3000", "melbourne"),
    ("crm:e", "robert", "jones", D75, "9 low rd", "3000", "melbourne"),
    ("web:f", "carl", "white", date(1990, 2, 2), "5 main st", "4000", "perth"),
    ("web:g", "dana", "white", date(1991, 3, 3), "5 main st", "4000", "perth"),
    ("web:h", "zed", "black", date(1960, 6, 6), "7 x st", "5000", "hobart"),
    ("web:i", "amy", "black", date(1960, 6, 6), "7 x st", "5000", "hobart"),
    *[(f"blk:{k}", f"n{k}", name, None, None, "6000", "darwin")
      for k, name in zip("jklt", ("adams", "brown", "clark", "davis"), strict=True)],
    *[(f"big:{k}", f"m{k}", name, None, None, "7000", "cairns")
      for k, name in zip("mnopu", ("evans", "fox", "green", "hill", "irwin"), strict=True)],
]
# This run: q joins a and b; r bridges (d's birth date, f and g's address); h moved and was
# renamed (it leaves i's block); i deleted; s grows the 6000 block past the limit; p's deletion
# brings the 7000 block back under it.
AFTER = [r for r in BEFORE if r[0] not in {"web:h", "web:i", "big:p"}] + [
    ("web:q", "ann", "smith", D80, "1 high st", "2000", "sydney"),
    ("web:r", "bob", "white", D75, "5 main st", "4000", "perth"),
    ("web:h", "zed", "blake", date(1960, 6, 6), "2 y st", "8000", "hobart"),
    ("blk:s", "ns", "evers", None, None, "6000", "darwin"),
]
CFG = MatchingSettings(blocking=[["postcode"], ["birth_date"], ["soundex(last_name)"]], max_block_size=4,
                       threshold=0.9, veto=["first_name_level = 0 AND birth_date_level = 0"])
PARAMS = M.Parameters(
    m={"first_name": np.array([0.05, 0.05, 0.1, 0.8]), "last_name": np.array([0.03, 0.04, 0.08, 0.85]),
       "birth_date": np.array([0.03, 0.07, 0.9]), "address": np.array([0.05, 0.05, 0.1, 0.8])},
    u={"first_name": np.array([0.9, 0.05, 0.04, 0.01]), "last_name": np.array([0.9, 0.05, 0.04, 0.01]),
       "birth_date": np.array([0.97, 0.02, 0.01]), "address": np.array([0.9, 0.08, 0.019, 0.001])},
    prior=0.2, iterations=1, converged=True)


def _full(records):
    return M.candidate_levels(M.block(records, CFG).pairs, CFG.tf_fields).select(*M.CANDIDATE_COLUMNS)


def _pairs(candidates, records):
    """match_pairs rows by pair, scored as the job scores."""
    scored = M.score_candidates(candidates, records, PARAMS, CFG, candidates.count(), records.count())
    return {(r.l_record, r.r_record): r for r in M.match_pairs(scored, CFG).collect()}


@pytest.fixture(scope="module")
def runs(spark):
    """(records before, records after, the last run's match_pairs)."""
    before = spark.createDataFrame(BEFORE, REC).localCheckpoint()
    after = spark.createDataFrame(AFTER, REC).localCheckpoint()
    full = _full(before)
    scored = M.score_candidates(full, before, PARAMS, CFG, full.count(), before.count())
    return before, after, M.match_pairs(scored, CFG).localCheckpoint()


def test_changed_records_are_new_deleted_or_differ_in_a_compared_field(spark, runs):
    before, after, _ = runs
    assert {r.record for r in changed_records(after, before).collect()} == {
        "web:q", "web:r", "web:h", "blk:s", "web:i", "big:p"}
    # a null compared field differs from a value, and equals a null
    one = spark.createDataFrame([("x:1", "a", None, None, None, None, None)], REC)
    other = spark.createDataFrame([("x:1", "a", "b", None, None, None, None)], REC)
    assert changed_records(one, one).count() == 0 and changed_records(one, other).count() == 1


def test_incremental_candidates_and_scores_equal_a_full_run(runs):
    before, after, last = runs
    done = rematch(after, before, last, CFG)
    # six records changed; the 6000 block (now giant: five records) and the 7000 block (no longer
    # giant: four) crossed the limit, so their remaining records are compared again too
    assert done.changed == 6 + 4 + 4
    full = _full(after).localCheckpoint()
    assert {tuple(r) for r in done.candidates.collect()} == {tuple(r) for r in full.collect()}
    ref = _pairs(full, after)
    assert ("web:a", "web:q") in ref and ("app:b", "web:q") in ref               # q joins a and b
    assert ("crm:d", "web:r") in ref and ("web:f", "web:r") in ref               # r bridges two blocks
    assert not any(k[0].startswith("blk:") and k[1].startswith("blk:") and ref[k].rule == 0 for k in ref)
    assert sum(k[0].startswith("big:") and k[1].startswith("big:") for k in ref) == 6   # 4 records: 6 pairs
    assert ("web:h", "web:i") not in ref and last.where("l_record = 'web:h' AND r_record = 'web:i'").count() == 1
    # only pairs holding a changed record were formed and compared; the rest were reused
    changed = {"web:q", "web:r", "web:h", "blk:s", *[f"blk:{k}" for k in "jklt"], *[f"big:{k}" for k in "mnou"]}
    assert done.compared == sum(k[0] in changed or k[1] in changed for k in ref) < len(ref)
    # same scores (term frequencies and prior of all current records), same verdicts
    inc = _pairs(done.candidates, after)
    assert inc.keys() == ref.keys()
    assert all(inc[k].match_weight == pytest.approx(ref[k].match_weight) for k in ref)
    assert {k for k in inc if inc[k].accepted} == {k for k in ref if ref[k].accepted}
    assert inc[("web:a", "web:q")].accepted


def test_no_change_compares_nothing(runs):
    before, _, last = runs
    done = rematch(before, before, last, CFG)
    assert (done.changed, done.compared) == (0, 0)
    assert {tuple(r) for r in done.candidates.collect()} == {tuple(r) for r in last.select(*M.CANDIDATE_COLUMNS).collect()}
