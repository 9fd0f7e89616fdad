"""MLflow at the edge: where runs go, one experiment per task, and a run context for jobs.

Without a configured server the store is a sqlite file inside the lakehouse
(``<lakehouse>/_mlflow/mlflow.db``, artifacts beside it), so two lakehouses never share a
registry, experiments or a ``champion``; ``mlflow ui --backend-store-uri sqlite:///<that file>``
shows every run of a laptop or CI. ``tracking.local_dir`` moves the store elsewhere, and a
configured URI (``tracking.tracking_uri``, ``$MLFLOW_TRACKING_URI``) wins over both.
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from memberlake.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def tracking_uri(settings: Settings) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else the local sqlite store."""
    if settings.tracking.tracking_uri:
        return settings.tracking.tracking_uri
    env = _user_env("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{local_store(settings) / 'mlflow.db'}"


LAKEHOUSE_STORE = "_mlflow"
# mlflow.set_tracking_uri also exports $MLFLOW_TRACKING_URI: the value this module set last is not
# the user's; what the variable held before is.
_LAST_SET: dict[str, str] = {}
_USER: dict[str, str | None] = {}


def _user_env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None and value == _LAST_SET.get(name):
        return _USER.get(name)
    return value or None


def local_store(settings: Settings) -> Path:
    """The folder of the local sqlite store: ``tracking.local_dir``, else ``<lakehouse>/_mlflow``."""
    if settings.tracking.local_dir:
        return Path(settings.tracking.local_dir).resolve()
    root = settings.storage.lakehouse
    if settings.storage.catalog_mode or not root:
        raise SettingsError("tracking.tracking_uri: catalog tables have no folder for a local MLflow store; set "
                            "tracking.tracking_uri (e.g. databricks) or tracking.local_dir")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", root):  # a URI: only file: is a local folder
        if not root.startswith("file:"):
            raise SettingsError(f"tracking.tracking_uri: the lakehouse {root} is not a local folder, so a sqlite "
                                "MLflow store cannot live in it; set tracking.tracking_uri or tracking.local_dir")
        root = urlparse(root).path
    return Path(root).resolve() / LAKEHOUSE_STORE


def configure(settings: Settings) -> None:
    import mlflow

    # mlflow resets its loggers on import; its sqlite migrations log every step at INFO.
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    registry = settings.tracking.registry_uri or _user_env("MLFLOW_REGISTRY_URI") or uri
    for name, value in (("MLFLOW_TRACKING_URI", uri), ("MLFLOW_REGISTRY_URI", registry)):
        _USER[name], _LAST_SET[name] = _user_env(name), value
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    # A sqlite store runs alembic on first use, and alembic's logging.fileConfig replaces the
    # root logger's handlers and level (WARN): open both stores now, once, and put ours back.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    client = mlflow.MlflowClient()
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    root.setLevel(level)
    root.handlers[:] = handlers
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def experiment(settings: Settings, task: str) -> str:
    """Id of ``<prefix>-<task>``, created with artifacts next to a local sqlite store."""
    import mlflow

    name = f"{settings.tracking.experiment_prefix}-{task}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    uri = tracking_uri(settings)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextmanager
def tracked_run(settings: Settings, task: str, run_name: str, params: dict[str, Any] | None = None,
                tags: dict[str, str] | None = None) -> Iterator[Any]:
    """An MLflow run for one job execution; parameters are logged up front."""
    import mlflow

    configure(settings)
    exp_id = experiment(settings, task)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags or {}) as active:
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        log.info("MLflow run %s in experiment %s (%s)", active.info.run_id, task, tracking_uri(settings))
        yield active
