"""job_runs: a succeeded and a failed run are both recorded, with rows and versions."""
from __future__ import annotations

import pytest

from memberlake.contract import Tables
from memberlake.io.delta import Lakehouse
from memberlake.ops.runs import recorded_run


def test_success_and_failure_are_recorded(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    with recorded_run(spark, lake, "demo", {"x": 1}) as run:
        run.record_read("bronze_a", 10, version=3)
        run.record_write("silver_a", 7, version=1)
    with pytest.raises(ValueError, match="boom"):
        with recorded_run(spark, lake, "demo", {"x": 2}):
            raise ValueError("boom")
    rows = {r.status: r for r in lake.read(Tables.JOB_RUNS).collect()}
    ok, bad = rows["succeeded"], rows["failed"]
    assert ok.rows_read == {"bronze_a": 10} and ok.versions_read == {"bronze_a": 3}
    assert ok.rows_written == {"silver_a": 7} and ok.versions_written == {"silver_a": 1}
    assert ok.parameters == '{"x": 1}' and ok.error is None and ok.ended_at >= ok.started_at
    assert bad.error == "ValueError: boom" and bad.parameters == '{"x": 2}'


def test_actions_after_the_commit_run_only_when_the_run_succeeds(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    done: list[str] = []
    with recorded_run(spark, lake, "demo", {}) as run:
        run.on_commit(lambda: done.append(
            lake.read(Tables.JOB_RUNS).where("status = 'succeeded'").count()))   # the record is there already
        assert done == []
    assert done == [1]
    with pytest.raises(ValueError, match="boom"):
        with recorded_run(spark, lake, "demo", {}) as run:
            run.on_commit(lambda: done.append("never"))
            raise ValueError("boom")
    assert done == [1]


def test_unchanged_and_same_version_compare_the_last_successful_run():
    import json
    from datetime import datetime

    from memberlake.ops.runs import Run, same_version, unchanged

    run = Run("sessions", "r2", {"timeout": 30}, datetime(2026, 1, 2), versions_read={"silver_events": 4,
                                                                                      "identity_graph": 7})
    previous = {"parameters": json.dumps({"timeout": 30}), "versions_read": {"silver_events": 3, "identity_graph": 7}}
    assert same_version(previous, run, "identity_graph") and not same_version(previous, run, "silver_events")
    assert not unchanged(previous, run)                                   # silver moved on
    assert unchanged({**previous, "versions_read": dict(run.versions_read)}, run)
    assert not unchanged({**previous, "versions_read": dict(run.versions_read), "parameters": "{}"}, run)
    for nothing in (None, {"parameters": previous["parameters"], "versions_read": None}):
        assert not same_version(nothing, run, "identity_graph") and not unchanged(nothing, run)
    # a table neither run read has the same (absent) version
    assert same_version(previous, run, "person")
