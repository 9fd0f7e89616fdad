"""All-or-nothing runs: a run's commits are visible once its run record says succeeded."""
from __future__ import annotations

import pytest

from memberlake.contract import Tables
from memberlake.io.commits import FAIL_AFTER_ENV, InjectedFault, RunTag, set_current
from memberlake.io.delta import Lakehouse, UnpublishedTable
from memberlake.ops.runs import recorded_run


def _ids(lake, spark, name) -> list[int]:
    return sorted(r.id for r in lake.read(name).collect())


def _frame(spark, ids):
    return spark.createDataFrame([(i,) for i in ids], "id int")


def test_a_failed_runs_writes_stay_invisible_and_are_rolled_back(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    with recorded_run(spark, lake, "demo", {}):
        lake.overwrite(_frame(spark, [1, 2]), "a")
    with pytest.raises(RuntimeError, match="crash"):
        with recorded_run(spark, lake, "demo", {}) as run:
            lake.append(_frame(spark, [3]), "a")
            lake.append(_frame(spark, [9]), "b")          # a table the failed run created
            assert _ids(lake, spark, "a") == [1, 2, 3]    # a run sees its own writes
            raise RuntimeError("crash")
    assert run.run_id  # recorded as failed
    assert lake.newest_version("a") == 1           # plain Delta readers would see id 3
    assert _ids(lake, spark, "a") == [1, 2] and lake.version("a") == 0
    assert not lake.exists("b") and "b" not in lake.table_names()
    assert "b" in lake.table_names(published_only=False)
    with pytest.raises(UnpublishedTable):
        lake.read("b")
    # The next run builds on the last good state: its append does not bring back id 3 or 9.
    with recorded_run(spark, lake, "demo", {}):
        lake.append(_frame(spark, [4]), "a")
        lake.merge(_frame(spark, [5]), "b", ["id"])
    assert _ids(lake, spark, "a") == [1, 2, 4]
    assert _ids(lake, spark, "b") == [5]


@pytest.mark.extended   # a second process SIGKILLed (~10 s); the default keeps the raised-failure tests
def test_a_killed_run_records_nothing_and_its_writes_are_not_published(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    with recorded_run(spark, lake, "demo", {}):
        lake.overwrite(_frame(spark, [1]), "a")
    # What a SIGKILLed driver leaves: a tagged commit and no run record.
    set_current(spark, RunTag("demo", "killed-run"))
    try:
        lake.replace_where(_frame(spark, [7]), "a", "id >= 1")
    finally:
        set_current(spark, None)
    assert _ids(lake, spark, "a") == [1]
    with recorded_run(spark, lake, "demo", {}):
        lake.replace_where(_frame(spark, [2]), "a", "id = 2")
    assert _ids(lake, spark, "a") == [1, 2]
    assert lake.read(Tables.JOB_RUNS).count() == 2


def test_untagged_tables_are_read_at_their_newest_version(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    lake.overwrite(_frame(spark, [1]), "a")           # outside any run (a user's own table)
    lake.append(_frame(spark, [2]), "a")
    assert _ids(lake, spark, "a") == [1, 2] and lake.version("a") == 1


def test_fault_injection_fails_right_after_the_named_write(spark, tmp_path, monkeypatch):
    lake = Lakehouse(str(tmp_path / "lake"))
    monkeypatch.setenv(FAIL_AFTER_ENV, "demo:b")
    with pytest.raises(InjectedFault, match="demo after writing b"):
        with recorded_run(spark, lake, "demo", {}):
            lake.overwrite(_frame(spark, [1]), "a")
            lake.overwrite(_frame(spark, [2]), "b")
            lake.overwrite(_frame(spark, [3]), "c")      # never reached
    assert lake.newest_version("b") == 0 and lake.newest_version("c") is None
    assert not lake.exists("a") and not lake.exists("b")
    failed = lake.read(Tables.JOB_RUNS).first()
    assert failed.status == "failed" and "injected fault" in failed.error
    with recorded_run(spark, lake, "other", {}):       # another job is not affected
        lake.overwrite(_frame(spark, [4]), "b")
    assert _ids(lake, spark, "b") == [4]


def test_an_empty_write_after_a_failed_one_is_published_with_its_run(spark, tmp_path):
    """Delta commits nothing for a write that changes nothing (an empty overwrite of an empty
    table): the head would stay the failed run's commit and readers would skip back past it.
    Found by the fault matrix (identity failing after its last write, an empty person_id_map)."""
    lake = Lakehouse(str(tmp_path / "lake"))
    empty = spark.createDataFrame([], "id int")
    with recorded_run(spark, lake, "demo", {}):
        lake.overwrite(_frame(spark, [1]), "d")                     # published: [1]
    with pytest.raises(RuntimeError):
        with recorded_run(spark, lake, "demo", {}):
            lake.overwrite(empty, "c")                              # never published
            lake.overwrite(empty, "d")
            raise RuntimeError("crash")
    assert not lake.exists("c") and _ids(lake, spark, "d") == [1]
    with recorded_run(spark, lake, "demo", {}):
        lake.overwrite(empty, "c")                                  # no-op writes on the failed heads
        lake.overwrite(empty, "d")
    assert lake.exists("c") and lake.read("c").count() == 0
    assert _ids(lake, spark, "d") == []                             # not the older [1]
