"""Registered sentiment models: each language's refitted text model in the MLflow registry, and
the champion scoring a language that has too few ratings in a run.

A run that learns a language's model (enough weak labels, see :mod:`memberlake.reviews.model`)
registers its refit as ``<reviews.model.registered_model>_<language>``, tagged with its held-out
ROC AUC and whether it beat the lexicon. It takes the ``champion`` alias by the shared rule
(:func:`memberlake.ops.registry.promote`), compared on the same rows: the labelled reviews written
after the champion's ``labels_through`` date, which the champion never saw, scored by the
champion and by this run's cross-fitted models. With too few of those (``min_per_class`` of each
class), the champion's recorded held-out AUC stands in. The alias moves only when the job's run
commits.

A later run whose reviews of a language carry too few ratings (a feed without stars, say)
scores them with that language's champion, when the champion beat the lexicon on its own
held-out reviews; otherwise the lexicon, as before any model was registered.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Callable

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.ops import registry
from memberlake.reviews.model import model_scores, roc_auc
from memberlake.settings import Settings

log = logging.getLogger(__name__)

METRIC = "roc_auc"
BEATS_LEXICON = "beats_lexicon"


@dataclass
class Learnt:
    """One language's text model refitted on all its labelled reviews, and the held-out evidence
    the registry compares with: the labelled reviews' cross-fitted ``model_score`` (with
    ``created_at``, ``tokens``, ``label``), its ROC AUC, and whether it beat the lexicon's."""

    language: str
    model: PipelineModel
    labelled: DataFrame
    heldout_auc: float
    beats_lexicon: bool


def model_name(settings: Settings, language: str) -> str:
    return f"{settings.reviews.model.registered_model}_{language}"


def _both_classes(rows: DataFrame, at_least: int) -> bool:
    counts = rows.agg(F.sum("label").alias("pos"), F.count(F.lit(1)).alias("n")).first()
    pos = int(counts["pos"] or 0)
    return min(pos, int(counts["n"]) - pos) >= at_least


def register(settings: Settings, learnt: list[Learnt], as_of: date,
             on_commit: Callable[[Callable[[], None]], None]) -> dict[str, registry.Registered]:
    """Register each language's refit (inside the job's active MLflow run)."""
    from mlflow import MlflowClient

    cfg = settings.reviews.model
    out = {}
    for one in learnt:
        name = model_name(settings, one.language)
        version = registry.champion_version(name)
        seen = registry.labels_through(name, version) if version is not None else None
        newer = one.labelled.where(F.to_date("created_at") > F.lit(seen)) if seen is not None else None
        champion_metric = None          # no unseen rows: the champion's recorded AUC stands in
        metric = one.heldout_auc
        if newer is not None and _both_classes(newer, cfg.min_per_class):
            newer = newer.localCheckpoint()
            metric = roc_auc(newer, "model_score")

            def champion_metric(champion: PipelineModel, rows: DataFrame = newer) -> float:
                return roc_auc(model_scores(champion, rows.drop("model_score")), "model_score")
            log.info("%s: compared with the champion on the labelled reviews after %s", name, seen)
        done = registry.register(one.model, name, METRIC, metric, champion_metric, cfg.min_improvement,
                                 labels_through=as_of, on_commit=on_commit)
        MlflowClient().set_model_version_tag(name, done.version, BEATS_LEXICON, str(one.beats_lexicon).lower())
        out[one.language] = done
    return out


def champion(settings: Settings, language: str) -> tuple[PipelineModel, str] | None:
    """The language's champion and its version, when one is registered and beat the lexicon on
    its held-out reviews; else None."""
    from mlflow import MlflowClient

    name = model_name(settings, language)
    version = registry.champion_version(name)
    if version is None:
        return None
    if MlflowClient().get_model_version(name, version).tags.get(BEATS_LEXICON) != "true":
        log.info("%s v%s did not beat the lexicon on its held-out reviews: the lexicon scores %s", name, version,
                 language)
        return None
    return registry.load_champion(name)
