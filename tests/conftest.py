"""Shared fixtures: one local Spark session for the whole run (pytest-spark), Delta on."""
from __future__ import annotations

import os
import sys

import pytest

from memberlake.settings import Settings, load_settings, with_overrides
from memberlake.spark import PrerequisiteError, check_java


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_java()
    except PrerequisiteError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def spark(spark_session):
    """pytest-spark's session (configured in pytest.ini); never stopped by a test."""
    spark_session.sparkContext.setLogLevel("ERROR")
    return spark_session


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
