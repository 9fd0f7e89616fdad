"""Fault injection: a job that fails after any one of its writes changes nothing readers see, and
a re-run leaves every table as a run that never failed would.

``-m extended`` runs the case the platform issue measured (identity failing right after its
``identity_edges`` commit, on a batch that links existing persons) with a SIGKILLed process;
``-m slow`` runs it with ``raise`` and the matrix: every job of the pipeline x every table it
writes. (The default suite's fault checks are the one-writer tests in ``tests/ops``.)
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake import cli
from memberlake.contract import Tables
from memberlake.io.commits import FAIL_AFTER_ENV, FAIL_MODE_ENV, InjectedFault
from memberlake.io.delta import Lakehouse

# Columns whose values belong to a run (ids, clocks, registry numbering), not to the data.
VOLATILE = {"run_id", "_batch_id", "_ingested_at", "_version", "first_seen", "changed_at", "computed_at", "created_at",
            "model_version", "requested_at", "scored_at", "trained_at"}
# Logs of runs, compared by their own tests.
LOGS = {Tables.JOB_RUNS, Tables.INGEST_FILES, Tables.CLEAN_BATCHES, Tables.DQ_METRICS, "match_parameters",
        "churn_metrics"}


def _rows(spark, lake: Lakehouse, table: str) -> list[tuple]:
    df = lake.read(table)
    keep = [f.name for f in df.schema.fields
            if f.name not in VOLATILE and not (isinstance(f.dataType, T.TimestampType) and f.name.endswith("_at"))]
    rows = [tuple(_Num(v) if isinstance(v, float) else str(v) for v in r) for r in df.select(*keep).collect()]
    return sorted(rows, key=lambda row: tuple((1, float(f"{x.value:.6g}")) if isinstance(x, _Num) else (0, x) for x in row))


class _Num:
    """A double as compared: equal within a relative 1e-7. Spark's sums of doubles depend on the
    order partitions arrive in, so two clean runs of a job differ in the last bits (forecast:
    153.05 and 153.04999999999998; the reviews model's scores at 1e-10); that order is not the data."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Num) and math.isclose(self.value, other.value, rel_tol=1e-7, abs_tol=1e-12)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return repr(self.value)


def _state(spark, lake: Lakehouse, tables=None) -> dict[str, list[tuple]]:
    names = tables or [t for t in lake.table_names() if t not in LOGS]
    return {t: _rows(spark, lake, t) if lake.exists(t) else None for t in names}


def _land_bridging_members(spark, lake: Lakehouse) -> None:
    """Silver gets member records that link pairs of existing persons: each has the name, birth
    date and address of one person (a probabilistic match) and the e-mail of another, in a source
    the e-mail has no record in yet (so no guard drops the link). Appended as ingest + clean would
    (an untagged commit: published)."""
    graph = lake.read("identity_graph").where("id_type = 'member'").select("value", "person_id")
    silver = lake.read(Tables.silver("members"))
    members = (silver.where("source = 'crm' AND email IS NOT NULL AND birth_date IS NOT NULL AND street IS NOT NULL")
               .join(graph, F.concat_ws(":", "source", "member_id") == F.col("value"), "inner")
               .orderBy("member_id").limit(12).collect())
    rows = []
    for i in range(0, len(members) - 1, 2):
        a, b = members[i], members[i + 1]
        if a.person_id != b.person_id:
            rows.append({**a.asDict(), "member_id": f"BRIDGE-{i}", "source": "web", "email": b.email, "phone": None,
                         "_record_hash": f"bridge-{i}"})
    assert len(rows) >= 3
    batch = spark.createDataFrame([tuple(r[c] for c in silver.columns) for r in rows], silver.schema)
    lake.append(batch, Tables.silver("members"))


@pytest.fixture(scope="module")
def before_identity(lake_dirs, tmp_path_factory, spark):
    """The e2e lakehouse copied, with a batch of bridging members in silver: identity is next.
    Returns (that lakehouse, the identity tables after a run that never failed)."""
    _, lakehouse = lake_dirs
    root = tmp_path_factory.mktemp("faults")
    lake_dir, clean_copy = root / "lake", root / "clean-run"
    shutil.copytree(lakehouse, lake_dir)
    _land_bridging_members(spark, Lakehouse(str(lake_dir)))
    shutil.copytree(lake_dir, clean_copy)
    assert cli.main(["identity", "--lakehouse", str(clean_copy)]) == 0
    history = Lakehouse(str(clean_copy)).read("person_id_history")
    assert history.where("change = 'merged'").count() > 0        # the batch linked persons
    return lake_dir, _state(spark, Lakehouse(str(clean_copy)), IDENTITY_TABLES)


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
    assert lake.newest_version("identity_edges") > lake.version("identity_edges")
    between = _state(spark, lake, IDENTITY_TABLES)
    assert between == before                       # no reader sees the failed run's edges
    assert cli.main(["identity", "--lakehouse", str(work)]) == 0
    return between, _state(spark, lake, IDENTITY_TABLES)


@pytest.mark.parametrize("kill", [pytest.param(False, marks=pytest.mark.slow), pytest.param(True, marks=pytest.mark.extended)], ids=["raise", "sigkill"])
def test_identity_failing_after_its_first_write_then_rerun_equals_a_clean_run(spark, before_identity, tmp_path, kill):
    base, clean = before_identity
    _, after = _failed_then_rerun(spark, base, tmp_path / "lake", kill)
    assert after == clean


# -- the full matrix (slow) -----------------------------------------------------------------------
def _written_tables(spark, lake: Lakehouse) -> dict[str, list[str]]:
    runs = lake.read(Tables.JOB_RUNS).where("status = 'succeeded'").collect()
    written: dict[str, set[str]] = {}
    for r in runs:
        written.setdefault(r.job, set()).update((r.versions_written or {}).keys())
    return {job: sorted(t for t in tables if t != Tables.JOB_RUNS) for job, tables in written.items()}


@pytest.mark.slow
def test_every_job_failing_after_every_write_then_rerun_equals_a_clean_run(spark, tmp_path, monkeypatch):
    """For each pipeline job and each table it writes: the job failing right after that write,
    then run again, leaves every table it writes equal (rows) to a run that never failed; between
    the two, readers see those tables as they were before the job started.

    The clean pipeline runs job by job with a copy of the lakehouse kept before each job, so a
    point of the matrix costs two runs of its own job, not two pipelines (a job's outputs depend
    only on the lakehouse it starts from). Outcomes are written to ``fault-matrix.txt`` in the
    test's folder and printed.
    """
    landing, clean_dir = tmp_path / "landing", tmp_path / "clean"
    # Each lakehouse keeps its own MLflow registry (<lakehouse>/_mlflow, copied with it): the
    # suite's shared store would let a point's re-run compare with the clean run's champion.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert cli.main(["generate", "--scale", "0.0005", "--seed", "3", "--out", str(landing)]) == 0
    args = ["--landing", str(landing)]
    # MEMBERLAKE_FAULT_POINTS=job:table,job,... runs only those points of the matrix (a bare job
    # name: all of its points); the clean pipeline then runs only as far as the last job chosen.
    chosen = {p for p in os.environ.get("MEMBERLAKE_FAULT_POINTS", "").split(",") if p}
    last = max((PIPELINE_JOBS.index(p.split(":")[0]) for p in chosen), default=len(PIPELINE_JOBS) - 1)
    jobs = PIPELINE_JOBS[:last + 1]
    before: dict[str, Path] = {}
    for job in jobs:
        before[job] = tmp_path / f"before-{job}"
        if clean_dir.exists():
            shutil.copytree(clean_dir, before[job])
        assert cli.main(["pipeline", "--only", job, *args, "--lakehouse", str(clean_dir)]) == 0
    clean_lake = Lakehouse(str(clean_dir))
    written = _written_tables(spark, clean_lake)
    # What each job left: the lakehouse before the next job (tables such as quarantine and
    # dq_metrics are written by several jobs).
    after_dirs = [before[j] for j in jobs[1:]] + [clean_dir]
    left = {job: _state(spark, Lakehouse(str(d)), written.get(job, [])) for job, d in zip(jobs, after_dirs, strict=True)}
    outcomes = []
    for job in jobs:
        for table in written.get(job, []):
            if chosen and not {job, f"{job}:{table}"} & chosen:
                continue
            work = tmp_path / f"{job}-{table}"
            if before[job].exists():
                shutil.copytree(before[job], work)
            lake = Lakehouse(str(work))
            start = _state(spark, lake, written[job]) if work.exists() else None
            os.environ[FAIL_AFTER_ENV] = f"{job}:{table}"
            try:
                with pytest.raises(InjectedFault):
                    cli.main(["pipeline", "--only", job, *args, "--lakehouse", str(work)])
            finally:
                os.environ.pop(FAIL_AFTER_ENV)
            assert lake.read(Tables.JOB_RUNS).where(f"status = 'failed' AND job = '{job}'").count() == 1
            unseen = start is None or _state(spark, lake, written[job]) == start
            assert cli.main(["pipeline", "--only", job, *args, "--lakehouse", str(work)]) == 0
            after = _state(spark, lake, written[job])
            same = after == left[job]
            outcomes.append((job, table, unseen, same, [t for t in written[job] if after[t] != left[job][t]]))
            with open(tmp_path / "fault-matrix.txt", "a") as out:   # as it goes: the matrix is long
                out.write(f"{job:<9} {table:<26} unseen-between={unseen} rerun-equals-clean={same} "
                          f"{outcomes[-1][4] or ''}\n")
            shutil.rmtree(work)
    print("\nfault matrix:", (tmp_path / "fault-matrix.txt").read_text(), sep="\n")
    assert outcomes and [o for o in outcomes if not (o[2] and o[3])] == []


PIPELINE_JOBS = ["ingest", "clean", "identity", "sessions", "reviews", "value", "forecast", "campaigns", "basket", "models",
                 "score", "uplift", "report"]


UPLIFT_ARGS = ["--set", "models.uplift.min_rows=10", "--set", "models.uplift.classifiers={logistic_regression: {regParam: 0.01}}"]


@pytest.mark.slow
def test_uplift_failing_after_each_write_then_rerun_equals_a_clean_run(spark, lake_dirs, tmp_path, monkeypatch):
    """The matrix's one job without write points at its scale: ``uplift`` writes nothing below
    ``models.uplift.min_rows`` contacts. On the e2e lakehouse with that limit lowered (as
    tests/e2e/test_uplift_job.py runs it), the job failing after each of its writes changes
    nothing readers see, and a re-run equals a run that never failed."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)   # each copy keeps its own registry
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    _, lakehouse = lake_dirs
    clean_dir = tmp_path / "clean"
    shutil.copytree(lakehouse, clean_dir)
    assert cli.main(["uplift", "--lakehouse", str(clean_dir), *UPLIFT_ARGS]) == 0
    tables = ["uplift_holdout", "uplift_metrics", "uplift_deciles", "uplift_scores"]
    clean = _state(spark, Lakehouse(str(clean_dir)), tables)
    assert all(clean[t] for t in tables)
    for table in tables:
        work = tmp_path / table
        shutil.copytree(lakehouse, work)
        lake = Lakehouse(str(work))
        start = _state(spark, lake, tables)
        os.environ[FAIL_AFTER_ENV] = f"uplift:{table}"
        try:
            with pytest.raises(InjectedFault):
                cli.main(["uplift", "--lakehouse", str(work), *UPLIFT_ARGS])
        finally:
            os.environ.pop(FAIL_AFTER_ENV)
        assert _state(spark, lake, tables) == start, table          # readers see the state before the job
        assert cli.main(["uplift", "--lakehouse", str(work), *UPLIFT_ARGS]) == 0
        assert _state(spark, lake, tables) == clean, table          # the re-run equals the clean run
        shutil.rmtree(work)
