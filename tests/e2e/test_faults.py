"""Fault injection: a job that fails after any one of its writes changes nothing readers see, and
a re-run leaves every table as a run that never failed would.

The default suite runs the case the platform issue measured (identity failing right after its
``identity_edges`` commit, on a batch that links existing persons), with ``raise`` and with a
SIGKILLed process. ``-m slow`` runs the matrix: every job of the pipeline x every table it writes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import types as T

from memberlake import cli
from memberlake.contract import Tables
from memberlake.io.commits import FAIL_AFTER_ENV, FAIL_MODE_ENV, InjectedFault
from memberlake.io.delta import Lakehouse

# Columns whose values belong to a run (ids, clocks, registry numbering), not to the data.
VOLATILE = {"run_id", "_batch_id", "_ingested_at", "first_seen", "changed_at", "computed_at", "created_at",
            "model_version", "requested_at", "scored_at", "trained_at"}
# Logs of runs, compared by their own tests.
LOGS = {Tables.JOB_RUNS, Tables.INGEST_FILES, Tables.CLEAN_BATCHES, Tables.DQ_METRICS, "match_parameters",
        "churn_metrics"}


def _rows(spark, lake: Lakehouse, table: str) -> list[tuple]:
    df = lake.read(spark, table)
    keep = [f.name for f in df.schema.fields
            if f.name not in VOLATILE and not (isinstance(f.dataType, T.TimestampType) and f.name.endswith("_at"))]
    return sorted((tuple(str(v) for v in r) for r in df.select(*keep).collect()))


def _state(spark, lake: Lakehouse, tables=None) -> dict[str, list[tuple]]:
    names = tables or [t for t in lake.table_names(spark) if t not in LOGS]
    return {t: _rows(spark, lake, t) if lake.exists(spark, t) else None for t in names}


def _bridging_members(spark, lake: Lakehouse, path: Path) -> None:
    """A members file with re-delivered records that link pairs of existing persons (e-mail of one,
    phone of the other) and duplicates of existing records."""
    graph = lake.read(spark, "identity_graph").where("id_type = 'member'")
    members = (lake.read(spark, Tables.silver("members")).where("email IS NOT NULL AND phone IS NOT NULL")
               .selectExpr("concat_ws(':', source, member_id) AS value", "*").join(graph, "value", "inner")
               .orderBy("member_id").limit(12).collect())
    lines = ["member_id,source,first_name,last_name,email,phone,updated_at"]
    for i in range(0, 10, 2):
        a, b = members[i], members[i + 1]
        if a.person_id != b.person_id:
            lines.append(f"BRIDGE-{i},crm,{a.first_name},{a.last_name},{a.email},{b.phone},2030-01-01T00:00:00Z")
    for m in members[10:]:
        lines.append(f"DUP-{m.member_id},web,{m.first_name},{m.last_name},{m.email},,2030-01-01T00:00:00Z")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def before_identity(lake_dirs, tmp_path_factory, spark):
    """The e2e lakehouse copied, a bridging members batch landed and cleaned: identity is next."""
    landing, lakehouse = lake_dirs
    root = tmp_path_factory.mktemp("faults")
    land, lake_dir = root / "landing", root / "lake"
    shutil.copytree(landing, land)
    shutil.copytree(lakehouse, lake_dir)
    _bridging_members(spark, Lakehouse(str(lake_dir)), land / "members_bridging.csv")
    assert cli.main(["pipeline", "--only", "ingest,clean", "--landing", str(land), "--lakehouse", str(lake_dir)]) == 0
    clean_copy = root / "clean-run"
    shutil.copytree(lake_dir, clean_copy)
    assert cli.main(["identity", "--lakehouse", str(clean_copy)]) == 0
    history = Lakehouse(str(clean_copy)).read(spark, "person_id_history")
    assert history.where("change = 'merged' AND old_id IS NOT NULL").count() > 0   # the batch linked persons
    return land, lake_dir, _state(spark, Lakehouse(str(clean_copy)), IDENTITY_TABLES)


IDENTITY_TABLES = ["identity_edges", "identity_audit", "identity_graph", "person_registry", "person_id_map", "person",
                   "match_pairs", "person_id_history"]


def _failed_then_rerun(spark, base: Path, work: Path, kill: bool) -> tuple[dict, dict]:
    shutil.copytree(base, work)
    lake = Lakehouse(str(work))
    before = _state(spark, lake, IDENTITY_TABLES)
    env = {FAIL_AFTER_ENV: "identity:identity_edges"}
    if kill:
        result = subprocess.run([sys.executable, "-m", "memberlake.cli", "identity", "--lakehouse", str(work)],
                                env={**os.environ, **env, FAIL_MODE_ENV: "kill"}, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == -9, result.stderr[-2000:]
    else:
        os.environ.update(env)
        try:
            with pytest.raises(InjectedFault):
                cli.main(["identity", "--lakehouse", str(work)])
        finally:
            os.environ.pop(FAIL_AFTER_ENV)
    assert lake.newest_version(spark, "identity_edges") > lake.version(spark, "identity_edges")
    between = _state(spark, lake, IDENTITY_TABLES)
    assert between == before                       # no reader sees the failed run's edges
    assert cli.main(["identity", "--lakehouse", str(work)]) == 0
    return between, _state(spark, lake, IDENTITY_TABLES)


@pytest.mark.parametrize("kill", [False, True], ids=["raise", "sigkill"])
def test_identity_failing_after_its_first_write_then_rerun_equals_a_clean_run(spark, before_identity, tmp_path, kill):
    _, base, clean = before_identity
    _, after = _failed_then_rerun(spark, base, tmp_path / "lake", kill)
    assert after == clean


# -- the full matrix (slow) -----------------------------------------------------------------------
def _written_tables(spark, lake: Lakehouse) -> dict[str, list[str]]:
    runs = lake.read(spark, Tables.JOB_RUNS).where("status = 'succeeded'").collect()
    written: dict[str, set[str]] = {}
    for r in runs:
        written.setdefault(r.job, set()).update((r.versions_written or {}).keys())
    return {job: sorted(t for t in tables if t != Tables.JOB_RUNS) for job, tables in written.items()}


@pytest.mark.slow
def test_every_job_failing_after_every_write_then_rerun_equals_a_clean_run(spark, tmp_path):
    """For each pipeline job and each table it writes: a pipeline run failing there, then a full
    re-run, leaves every table equal to a run that never failed; between the two, readers see the
    tables as they were before the failed job started."""
    landing, clean_dir = tmp_path / "landing", tmp_path / "clean"
    assert cli.main(["generate", "--scale", "0.0005", "--seed", "3", "--out", str(landing)]) == 0
    assert cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(clean_dir)]) == 0
    clean_lake = Lakehouse(str(clean_dir))
    clean = _state(spark, clean_lake)
    outcomes = []
    for job, tables in _written_tables(spark, clean_lake).items():
        for table in tables:
            work = tmp_path / f"{job}-{table}"
            os.environ[FAIL_AFTER_ENV] = f"{job}:{table}"
            try:
                with pytest.raises(InjectedFault):
                    cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(work)])
            finally:
                os.environ.pop(FAIL_AFTER_ENV)
            lake = Lakehouse(str(work))
            runs = lake.read(spark, Tables.JOB_RUNS)
            assert runs.where(f"status = 'failed' AND job = '{job}'").count() == 1
            assert not lake.exists(spark, table) or lake.version(spark, table) < lake.newest_version(spark, table)
            assert cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(work)]) == 0
            same = _state(spark, lake) == clean
            outcomes.append((job, table, same))
            shutil.rmtree(work)
    print("\nfault matrix (job, table, re-run equals clean):", *outcomes, sep="\n  ")
    assert [o for o in outcomes if not o[2]] == []
