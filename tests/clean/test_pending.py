"""Which bronze batches an incremental clean reads."""
from __future__ import annotations

from memberlake.clean.batches import pending_batches
from memberlake.contract import BATCH_ID


def _bronze(spark, batches):
    return spark.createDataFrame([(f"m{i}", b) for i, b in enumerate(batches)], f"member_id string, {BATCH_ID} string")


def _done(spark, batches):
    return spark.createDataFrame([(b,) for b in batches], f"{BATCH_ID} string")


def test_pending_batches_are_those_not_cleaned_yet(spark):
    bronze = _bronze(spark, ["b1", "b1", "b2", "b3", "b3", "b3"])
    assert pending_batches(bronze, _done(spark, ["b2"])) == ["b1", "b3"]
    assert pending_batches(bronze, None) == ["b1", "b2", "b3"]
    # done batches no longer in bronze (a file delivered again under a new batch) change nothing
    assert pending_batches(bronze, _done(spark, ["b0", "b1", "b3"])) == ["b2"]


def test_nothing_pending_is_an_empty_list_and_too_many_is_none(spark):
    bronze = _bronze(spark, ["b1", "b2", "b3"])
    assert pending_batches(bronze, _done(spark, ["b1", "b2", "b3"])) == []
    # above the limit the caller falls back to the anti-join over the whole table
    assert pending_batches(bronze, None, limit=2) is None
    assert pending_batches(bronze, None, limit=3) == ["b1", "b2", "b3"]
