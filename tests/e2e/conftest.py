"""One pipeline run on a small generated landing zone, shared by the end-to-end modules.

Modules run in name order: ``test_operate`` (report, privacy, maintenance: on copies when they
change tables) before ``test_pipeline`` (which also adds files and re-runs jobs).
"""
from __future__ import annotations

import pytest

from memberlake import cli

SCALE = "0.001"


@pytest.fixture(scope="session")
def lake_dirs(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("e2e")
    landing, lakehouse = root / "landing", root / "lake"
    assert cli.main(["generate", "--scale", SCALE, "--seed", "7", "--out", str(landing)]) == 0
    assert cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(lakehouse)]) == 0
    return landing, lakehouse
