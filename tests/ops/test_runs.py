"""job_runs: a succeeded and a failed run are both recorded, with rows and versions."""
from __future__ import annotations

import pytest

from memberlake.contract import Tables
from memberlake.io.delta import Lakehouse
from memberlake.ops.runs import recorded_run


def test_success_and_failure_are_recorded(spark, tmp_path):
    lake = Lakehouse(str(tmp_path / "lake"))
    with recorded_run(spark, lake, "demo", {"x": 1}) as run:
        run.read("bronze_a", 10, version=3)
        run.wrote("silver_a", 7, version=1)
    with pytest.raises(ValueError, match="boom"):
        with recorded_run(spark, lake, "demo", {"x": 2}):
            raise ValueError("boom")
    rows = {r.status: r for r in lake.read(spark, Tables.JOB_RUNS).collect()}
    ok, bad = rows["succeeded"], rows["failed"]
    assert ok.rows_read == {"bronze_a": 10} and ok.versions_read == {"bronze_a": 3}
    assert ok.rows_written == {"silver_a": 7} and ok.versions_written == {"silver_a": 1}
    assert ok.parameters == '{"x": 1}' and ok.error is None and ok.ended_at >= ok.started_at
    assert bad.error == "ValueError: boom" and bad.parameters == '{"x": 2}'
