"""MLflow per lakehouse: the default local store lives inside the lakehouse; a configured URI wins."""
from __future__ import annotations

import pytest

from memberlake.ops import tracking
from memberlake.settings import SettingsError, load_settings, with_overrides


@pytest.fixture()
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


def _settings(lakehouse, **tracking_overrides):
    base = with_overrides(load_settings("local"), storage={"lakehouse": str(lakehouse)})
    return with_overrides(base, tracking=tracking_overrides) if tracking_overrides else base


def test_each_lakehouse_gets_its_own_store(tmp_path, no_env_uri):
    a, b = tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    assert tracking.tracking_uri(_settings(a)) == f"sqlite:///{a.resolve()}/_mlflow/mlflow.db"
    assert tracking.tracking_uri(_settings(b)) == f"sqlite:///{b.resolve()}/_mlflow/mlflow.db"
    assert tracking.tracking_uri(_settings(f"file://{a}")) == f"sqlite:///{a.resolve()}/_mlflow/mlflow.db"


def test_a_configured_uri_or_folder_wins(tmp_path, no_env_uri, monkeypatch):
    lake = tmp_path / "lake"
    assert tracking.tracking_uri(_settings(lake, tracking_uri="databricks")) == "databricks"
    assert tracking.tracking_uri(_settings(lake, local_dir=str(tmp_path / "ml"))) == \
        f"sqlite:///{(tmp_path / 'ml').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri(_settings(lake)) == "http://127.0.0.1:5000"


def test_a_remote_lakehouse_without_a_tracking_uri_names_the_key(no_env_uri):
    with pytest.raises(SettingsError, match=r"^tracking\.tracking_uri: .*s3a://bucket/lake"):
        tracking.tracking_uri(_settings("s3a://bucket/lake"))


def test_two_lakehouses_do_not_share_a_registry(tmp_path, no_env_uri):
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        tracking.configure(_settings(tmp_path / "a"))
        mlflow.MlflowClient().create_registered_model("memberlake-churn")
        assert (tmp_path / "a" / "_mlflow" / "mlflow.db").exists()
        tracking.configure(_settings(tmp_path / "b"))
        assert mlflow.MlflowClient().search_registered_models() == []
        tracking.configure(_settings(tmp_path / "a"))
        assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == ["memberlake-churn"]
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
