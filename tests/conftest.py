"""Shared fixtures: one local Spark session for the whole run (pytest-spark), Delta on."""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

from memberlake.settings import Settings, load_settings, with_overrides
from memberlake.spark import PrerequisiteError, check_java


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_java()
    except PrerequisiteError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)     # before xdist's own hook turns the marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n`` (``make test TEST_WORKERS=N``) a test file runs on one worker, so its module fixtures
    are built once; the end-to-end files share one pipeline run and go to one worker together."""
    for item in items:
        path = Path(str(item.fspath))
        group = "e2e" if path.parent.name == "e2e" else f"{path.parent.name}/{path.name}"
        item.add_marker(pytest.mark.xdist_group(group))


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
    return session


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
