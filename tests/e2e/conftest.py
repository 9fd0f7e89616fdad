"""The end-to-end fixtures: pipeline runs on a small generated landing zone.

``landing_lake`` (default suite) runs ingest, clean and identity; ``lake_dirs`` (``-m extended``)
runs the whole pipeline once and is shared by the extended modules, which run in name order:
``test_operate`` (report, privacy, maintenance: on copies when they change tables) before
``test_pipeline`` (which also adds files and re-runs jobs).
"""
from __future__ import annotations

import pytest

from memberlake import cli

SCALE, SEED = "0.001", "7"


def _generate(tmp_path_factory, name: str):
    root = tmp_path_factory.mktemp(name)
    landing, lakehouse = root / "landing", root / "lake"
    assert cli.main(["generate", "--scale", SCALE, "--seed", SEED, "--out", str(landing)]) == 0
    return landing, lakehouse


@pytest.fixture(scope="session")
def landing_lake(tmp_path_factory, spark):
    """The generated landing zone through ``pipeline --only ingest,clean,identity``: the first three
    jobs give the same tables here as in the whole pipeline (the same seed and scale)."""
    landing, lakehouse = _generate(tmp_path_factory, "e2e-landing")
    assert cli.main(["pipeline", "--only", "ingest,clean,identity", "--landing", str(landing),
                     "--lakehouse", str(lakehouse)]) == 0
    return landing, lakehouse


@pytest.fixture(scope="session")
def lake_dirs(tmp_path_factory, spark):
    landing, lakehouse = _generate(tmp_path_factory, "e2e")
    assert cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(lakehouse)]) == 0
    return landing, lakehouse
