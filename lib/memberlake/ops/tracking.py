"""MLflow at the edge: where runs go, one experiment per task, and a run context for jobs.

Without a configured server the store is a sqlite file under ``tracking.local_dir`` with the
artifacts beside it, so ``mlflow ui --backend-store-uri sqlite:///data/mlflow/mlflow.db`` shows
every run of a laptop or CI.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from memberlake.settings import Settings

log = logging.getLogger(__name__)


def tracking_uri(settings: Settings) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else the local sqlite store."""
    if settings.tracking.tracking_uri:
        return settings.tracking.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = Path(settings.tracking.local_dir).resolve()
    return f"sqlite:///{folder / 'mlflow.db'}"


def configure(settings: Settings) -> None:
    import mlflow

    # mlflow resets its loggers on import; its sqlite migrations log every step at INFO.
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    registry = settings.tracking.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI")
    mlflow.set_registry_uri(registry or uri)
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
