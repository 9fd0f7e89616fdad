"""Shared fixtures: one local Spark session for the whole run (pytest-spark), Delta on."""
from __future__ import annotations

import fcntl
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from memberlake.class_sharing import CACHE_ENV
from memberlake.settings import Settings, load_settings, with_overrides
from memberlake.spark import PrerequisiteError, check_java


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_java()
    except PrerequisiteError as exc:
        raise pytest.UsageError(str(exc)) from None
    spark_test_conf(config)     # a bad MEMBERLAKE_TEST_SPARK stops the run here, in one line
    # Jobs the tests start in subprocesses keep their JVM class archive (memberlake.class_sharing)
    # in the run's own folder: never the user's cache, never one left by an earlier run.
    os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="memberlake-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.pop(CACHE_ENV, None)
    if folder and Path(folder).name.startswith("memberlake-test-cache-"):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)     # before xdist's own hook turns the marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n`` (``make test TEST_WORKERS=N``) a test file runs on one worker, so its module fixtures
    are built once; the end-to-end files share one pipeline run and go to one worker together."""
    for item in items:
        path = Path(str(item.fspath))
        group = "e2e" if path.parent.name == "e2e" else f"{path.parent.name}/{path.name}"
        item.add_marker(pytest.mark.xdist_group(group))


# What the test JVM's exit code says (a dead JVM fails every later test with "Connection refused").
# A signal is -N from Popen, 128+N when a shell reported it; both are looked up as -N.
_JVM_EXITS = {
    52: "java.lang.OutOfMemoryError (Spark exits with 52): the heap is spark.driver.memory in pytest.ini",
    -9: "killed by SIGKILL: the machine's out-of-memory killer, most likely (dmesg tells)",
    -6: "aborted: a crash of the JVM itself (hs_err_pid*.log in the working folder)",
}


def _jvm_exit_code() -> int | None:
    """The test JVM's exit code once it has ended, else None (also when none was started)."""
    from pyspark import SparkContext

    proc = getattr(SparkContext._gateway, "proc", None)
    return None if proc is None else proc.poll()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Stop the run at the first failure after the JVM died, naming the exit code's meaning, instead
    of failing every later test with the same "Connection refused"."""
    outcome = yield
    if outcome.get_result().failed and (code := _jvm_exit_code()) is not None:
        meaning = _JVM_EXITS.get(code if code <= 128 else 128 - code,
                                 "see the test's captured stderr for the JVM's last lines")
        pytest.exit(f"the test JVM exited with code {code} ({meaning}) by the end of {item.nodeid}: "
                    "the tests after it cannot run", returncode=1)


@pytest.fixture(scope="session")
def spark(request, tmp_path_factory):
    """pytest-spark's session (configured in pytest.ini); never stopped by a test.

    Parallel workers start their JVMs one at a time: the first resolves the Delta jars into the
    Ivy cache (downloading them on a fresh machine), the others then find them there instead of
    writing the same cache files at once."""
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "spark-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            session = request.getfixturevalue("spark_session")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    session.sparkContext.setLogLevel("ERROR")
    for key, value in spark_test_conf(request.config).items():
        session.conf.set(key, value)
    return session


# The default suite's frames are a few rows, so Spark's work per query is mostly fixed costs that pay
# off only on real volumes (bench/RESULTS.md, "the default suite runs Spark with small-data settings"):
# - compiling the code Spark generates per query (HotSpot then compiles the generated classes too);
#   interpreting the same plans gives the same rows;
# - adaptive execution, which runs each shuffle as its own job and re-plans after it;
# - broadcasting the smaller side of a join by its estimated size: a job, a collect and a broadcast
#   variable each; a sort-merge join of a few rows costs less. Joins the code hints still broadcast.
# The extended and cluster tiers, the benchmarks and every job keep Spark's defaults, so generated
# code, adaptive plans and size-based broadcasts still run in CI.
CODEGEN = {
    "interpreted": {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"},
    "compiled": {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"},
}
TEST_SPARK = {
    "small": {**CODEGEN["interpreted"], "spark.sql.adaptive.enabled": "false",
              "spark.sql.autoBroadcastJoinThreshold": "-1"},
    "defaults": {**CODEGEN["compiled"], "spark.sql.adaptive.enabled": "true",
                 "spark.sql.autoBroadcastJoinThreshold": "10485760b"},
}


def spark_test_conf(config: pytest.Config) -> dict[str, str]:
    """The small-data settings for the default selection (its marker expression leaves ``extended``
    out), Spark's defaults for any other; ``MEMBERLAKE_TEST_SPARK=small|defaults`` chooses either way."""
    chosen = os.environ.get("MEMBERLAKE_TEST_SPARK", "").strip().lower()
    if not chosen:
        chosen = "small" if "not extended" in (config.option.markexpr or "") else "defaults"
    if chosen not in TEST_SPARK:
        raise pytest.UsageError(f"MEMBERLAKE_TEST_SPARK={chosen!r}: use 'small' or 'defaults'")
    return TEST_SPARK[chosen]


@pytest.fixture()
def evaluate_by(spark):
    """``evaluate_by("compiled" | "interpreted")`` switches the session for the rest of the test;
    the suite's setting is restored after it."""
    saved = {key: spark.conf.get(key) for key in CODEGEN["compiled"]}

    def use(mode: str) -> None:
        for key, value in CODEGEN[mode].items():
            spark.conf.set(key, value)

    yield use
    for key, value in saved.items():
        spark.conf.set(key, value)


@pytest.fixture(scope="module", autouse=True)
def _release_spark_memory():
    """After each test module, let go of what the shared JVM keeps for tables and data frames that
    no later module uses: Delta's cached table logs (each holds a cached snapshot) and the data the
    module cached. Without this the heap left after a full GC grows past 1 GB over the suite."""
    yield
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        return
    gc.collect()     # Python frames that still point at JVM data frames (py4j frees them on collection)
    active._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    active.catalog.clearCache()


@pytest.fixture()
def settings(tmp_path) -> Settings:
    """Local settings with the lakehouse in a fresh temporary folder."""
    base = load_settings("local")

    return with_overrides(base, storage={"lakehouse": str(tmp_path / "lake")},
                          landing={"path": str(tmp_path / "landing")})


@pytest.fixture(scope="session", autouse=True)
def _mlflow_tmp_store(tmp_path_factory):
    """MLflow never writes outside the run's temporary folder (module fixtures included)."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = f"sqlite:///{db}"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    yield db
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
