"""CLI wiring that needs no Spark: pipeline order, --only and --from."""
from __future__ import annotations

import pytest

from memberlake.cli import PIPELINE, pipeline_steps
from memberlake.jobs.common import InputError


def names(steps):
    return [s.NAME for s in steps]


def test_pipeline_order_only_and_from():
    assert names(pipeline_steps(None, None)) == [j.NAME for j in PIPELINE] == ["ingest", "clean", "identity"]
    assert names(pipeline_steps(["clean"], None)) == ["clean"]
    assert names(pipeline_steps(None, "clean")) == ["clean", "identity"]
    assert names(pipeline_steps(["identity", "ingest"], None)) == ["ingest", "identity"]   # dependency order kept


def test_unknown_job_names_are_refused():
    with pytest.raises(InputError, match="unknown pipeline job 'x'"):
        pipeline_steps(["x"], None)
    with pytest.raises(InputError, match="unknown pipeline job 'y'"):
        pipeline_steps(None, "y")
