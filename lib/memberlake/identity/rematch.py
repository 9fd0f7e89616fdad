"""Incremental matching: compare only the member records that changed since the last run.

At a million records blocking and comparing the default rules' tens of millions of candidate
pairs is most of the identity job, yet a daily batch changes a few thousand records. A pair of
two records that did not change keeps its blocking keys, rules and comparison levels, so the
last run's candidates (``match_pairs``, which keeps them with a hash of each exactly agreeing
name) are reused for those pairs, and only pairs holding a *changed* record are formed and
compared again. A record is changed when it is new, deleted, or any compared field differs from
``match_records`` (the prepared records of the last run), and also when it sits in a block that
crossed ``max_block_size`` either way since the last run (a block that became giant drops its
pairs, one that shrank forms pairs between unchanged records).

Everything that depends on all records is still computed over all of them: the giant blocks,
the term frequencies, the training (EM over all candidates' level patterns) and the random-pair
prior, and every candidate is scored again. So the candidates, their levels and their scores
equal a full run's (``tests/identity/test_rematch.py``), and an accepted pair between two
unchanged records can still change when the name frequencies or the prior move: the changed
edges then reach the components through ``incremental.py``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame

from memberlake.identity import matching
from memberlake.identity.incremental import in_one_only
from memberlake.settings import MatchingSettings

log = logging.getLogger(__name__)


@dataclass
class Rematched:
    # every candidate pair (matching.CANDIDATE_COLUMNS), as a full run forms them: the reused
    # pairs read from the last run's table (not materialised: tens of millions of rows cost more
    # to cache than to read again, and training and scoring read them a few times), the new
    # ones materialised
    candidates: DataFrame
    giants: matching.Giants  # of all current records
    changed: int            # records new, deleted, changed or in a block that crossed the size limit
    compared: int           # candidate pairs formed and compared in this run


def changed_records(records: DataFrame, before: DataFrame) -> DataFrame:
    """(record) of prepared records that are new, deleted, or differ in a compared field (a row
    of either side that the other does not hold; nulls compare equal)."""
    return in_one_only(records, before, ["record", *matching.COLUMNS]).select("record").distinct()


def in_flipped_blocks(records: DataFrame, giants_now: DataFrame, giants_before: DataFrame,
                      cfg: MatchingSettings) -> DataFrame:
    """(record) of records in a block that is giant now and was not, or the reverse."""
    flipped = in_one_only(giants_now, giants_before, ["rule", "key"]).collect()   # giant blocks are few
    if not flipped:
        return records.sparkSession.createDataFrame([], "record string")
    by_rule: dict[str, list[str]] = {}
    for row in flipped:
        by_rule.setdefault(row["rule"], []).append(row["key"])
    tests = [matching.rule_key(rule).isin(by_rule[" & ".join(rule)]) for rule in cfg.blocking if " & ".join(rule) in by_rule]
    log.info("matching: %d blocks crossed the size limit of %d since the last run", len(flipped), cfg.max_block_size)
    return records.where(reduce(lambda a, b: a | b, tests)).select("record")


def rematch(records: DataFrame, before_records: DataFrame, before_pairs: DataFrame, cfg: MatchingSettings) -> Rematched:
    """All candidates of ``records`` (prepared), reusing ``before_pairs`` (the last run's
    ``match_pairs``) for pairs of records unchanged since ``before_records`` (``match_records``).

    Both must come from a run with the same matching settings (the identity job runs in full
    when they differ)."""
    giants = matching.giant_blocks(records, cfg)
    before = matching.giant_blocks(before_records, cfg)
    changed = (changed_records(records, before_records)
               .unionByName(in_flipped_blocks(records, giants.blocks, before.blocks, cfg)).distinct().localCheckpoint())
    n_changed = changed.count()
    ids = changed.select("record")
    kept = (before_pairs.select(*matching.CANDIDATE_COLUMNS)
            .join(ids.withColumnRenamed("record", "l_record"), "l_record", "left_anti")
            .join(ids.withColumnRenamed("record", "r_record"), "r_record", "left_anti")
            .select(*matching.CANDIDATE_COLUMNS))
    keyed = matching.keyed_records(records, cfg, giants)
    fresh = matching.candidate_levels(matching.block_batch(keyed, changed, len(cfg.blocking)),
                                      cfg.tf_fields).localCheckpoint()
    n_fresh = fresh.count()
    log.info("matching: incremental: %d records changed since the last run; %d candidate pairs compared", n_changed,
             n_fresh)
    return Rematched(kept.unionByName(fresh), giants, n_changed, n_fresh)
