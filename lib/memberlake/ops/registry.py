"""The MLflow model registry at the edge: log + register a Spark model, the champion alias rule.

A new version always gets registered (it is the record of what was trained); it takes the
``champion`` alias only when :func:`promote` says so, otherwise it is tagged ``challenger``. Churn,
uplift and review sentiment models share it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Callable

from pyspark.errors import PySparkException
from pyspark.ml import PipelineModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
LABELS_THROUGH = "labels_through"


@dataclass
class Registered:
    version: str
    promoted: bool
    champion_metric: float | None


def requirements() -> list[str]:
    """The model's pip requirements, given so mlflow does not infer them (that reloads the model
    in a subprocess: tens of seconds per log_model)."""
    import mlflow
    import numpy
    import pandas
    import pyspark

    return [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}", f"numpy=={numpy.__version__}",
            f"pandas=={pandas.__version__}"]


def promote(candidate: float, champion: float | None, min_improvement: float = 0.0) -> bool:
    """The champion rule: a new model takes the alias only when it beats the champion's validation
    metric by more than ``min_improvement`` (any model wins when there is no champion)."""
    return champion is None or candidate > champion + min_improvement


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"


def champion_version(name: str) -> str | None:
    """Version number behind ``name@champion``, or None (no such model or alias)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def labels_through(name: str, version: str) -> date | None:
    """The version's ``labels_through`` tag: the as-of date of the split it was compared on."""
    from mlflow import MlflowClient

    tag = MlflowClient().get_model_version(name, version).tags.get(LABELS_THROUGH)
    return date.fromisoformat(tag) if tag else None


def load_version(name: str, version: str) -> PipelineModel:
    import mlflow.spark

    return mlflow.spark.load_model(f"models:/{name}/{version}")


def load_champion(name: str) -> tuple[PipelineModel, str] | None:
    version = champion_version(name)
    if version is None:
        return None
    return load_version(name, version), version


def register(model: PipelineModel, name: str, metric_name: str, metric: float,
             champion_metric: Callable[[PipelineModel], float] | None, min_improvement: float,
             signature=None, input_example=None, labels_through: date | None = None,
             on_commit: Callable[[Callable[[], None]], None] | None = None) -> Registered:
    """Log ``model`` in the active run, register it, and move the alias when it beats the champion.

    ``champion_metric`` scores the current champion on the rows this run compares on (the
    newest split the new model was not trained on), so both are compared on the same rows; if
    the champion cannot score them (e.g. its features differ) its recorded metric is used
    instead, and without one the champion keeps the alias (never promote on an error); any other
    error propagates. ``labels_through`` is those rows' as-of date, which is also the last day whose
    outcome the new model's training labels include; it is kept as a version tag. A champion
    whose labels reach past it has seen outcomes of the comparison rows (e.g. this run is a
    backfill with an earlier as-of date), so it is not compared and keeps the alias. With
    ``champion_metric`` None (no rows both models can be scored on), ``metric`` is compared with
    the champion's recorded one, and without one the champion keeps the alias.

    With ``on_commit`` (a job's ``Run.on_commit``), a winner is registered as a challenger and the
    alias moves only when the job's run commits: the registry is outside the lakehouse, and a run
    that fails after registering must not leave its model serving (docs/operations.md).
    """
    import mlflow.spark
    from mlflow import MlflowClient

    client = MlflowClient()
    current = None
    champ_version = champion_version(name)
    seen_too_much = unknown = False
    if champ_version is not None:
        tags = client.get_model_version(name, champ_version).tags
        seen = tags.get(LABELS_THROUGH)
        seen_too_much = (seen is not None and labels_through is not None
                         and date.fromisoformat(seen) > labels_through)
        if seen_too_much:
            log.warning("champion v%s was trained on labels through %s, after this run's comparison date %s: "
                        "it keeps the alias without a comparison", champ_version, seen, labels_through)
        else:
            reason = "no comparison rows"
            if champion_metric is not None:
                try:
                    current = champion_metric(load_version(name, champ_version))
                except (PySparkException, ValueError, KeyError) as exc:  # e.g. its features are not in this run
                    reason = f"could not score the comparison rows: {type(exc).__name__}: {exc}"
            if current is None and metric_name not in tags:
                # Nothing to compare with: an error must never be what promotes a model.
                unknown = True
                log.error("champion v%s (%s) has no recorded %s: it keeps the alias; the new version is "
                          "registered as a challenger", champ_version, reason, metric_name)
            elif current is None:
                current = float(tags[metric_name])
                log.warning("champion v%s (%s): using its recorded %s %s", champ_version, reason, metric_name,
                            current)
    info = mlflow.spark.log_model(model, "model", registered_model_name=name, signature=signature,
                                  input_example=input_example, pip_requirements=requirements())
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, metric_name, f"{metric:.6f}")
    if labels_through is not None:
        client.set_model_version_tag(name, version, LABELS_THROUGH, labels_through.isoformat())
    won = not seen_too_much and not unknown and promote(metric, current, min_improvement)
    client.set_model_version_tag(name, version, "role", "challenger")

    def take_alias() -> None:
        client.set_registered_model_alias(name, CHAMPION, version)
        client.set_model_version_tag(name, version, "role", CHAMPION)
        log.info("%s v%s is the %s", name, version, CHAMPION)

    if won:
        (on_commit or (lambda action: action()))(take_alias)
    log.info("registered %s v%s (%s %.4f vs champion %s): %s", name, version, metric_name, metric,
             "none" if current is None else f"{current:.4f}", CHAMPION if won else "challenger")
    return Registered(version, won, current)
