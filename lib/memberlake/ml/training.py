"""Training runs of the models job: behavioural segmentation and the churn model, tracked in MLflow.

Each returns the rows of its tables; the job publishes them. The churn model is registered and
becomes ``champion`` only when it beats the current one (:mod:`memberlake.ops.registry`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import Callable

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.ml import charts, churn
from memberlake.ml.features import churn_labels, feature_names
from memberlake.ml.segmentation import assign, cluster_profile, fit_segments, personas
from memberlake.ops import registry
from memberlake.ops.runs import Run
from memberlake.ops.tracking import tracked_run
from memberlake.settings import Settings

log = logging.getLogger(__name__)


def run_tags(run: Run, settings: Settings) -> dict[str, str]:
    """Git commit, a hash of the models config, and the Delta versions of the inputs."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    config = json.dumps(settings.models.model_dump(mode="json"), sort_keys=True)
    return {"git_commit": commit, "config_hash": hashlib.sha256(config.encode()).hexdigest()[:16],
            "memberlake_job_run": run.run_id,
            **{f"delta_version.{t}": str(v) for t, v in sorted(run.versions_read.items())}}


def segmentation(settings: Settings, current: DataFrame, as_of: date, tags: dict[str, str],
                 stage: Callable[..., None]) -> dict[str, DataFrame]:
    """Behavioural segments of ``current`` (one as-of date's features): ``segments`` and
    ``segment_profile`` rows, the MLflow run with the silhouette curve and the model."""
    import mlflow
    import mlflow.spark

    spark = current.sparkSession
    cfg = settings.models.segmentation
    fit = fit_segments(current, cfg)
    assigned = assign(fit.model, current).localCheckpoint()
    profile_rows = [r.asDict() for r in cluster_profile(assigned, cfg.features).collect()]  # k x features rows
    labels = personas(profile_rows)
    label_df = spark.createDataFrame([(c, n) for c, n in labels.items()], "cluster int, persona string")
    day = F.lit(as_of).alias("as_of_date")
    segments = assigned.select("person_id", day, "cluster").join(F.broadcast(label_df), "cluster").select(
        "person_id", "as_of_date", "cluster", "persona")
    profile = spark.createDataFrame(pd.DataFrame(profile_rows)).join(label_df, "cluster").select(day, "*")
    stage("segmentation %s: k=%d (silhouette %.3f); %s", cfg.algorithm, fit.k, fit.silhouettes[fit.k],
              "; ".join(f"{c}: {n}" for c, n in sorted(labels.items())))
    params = {"as_of": as_of.isoformat(), **{k: v for k, v in cfg.model_dump().items()}}
    with tracked_run(settings, "segmentation", f"segmentation {as_of}", params, tags):
        for k, value in fit.silhouettes.items():
            mlflow.log_metric("silhouette", value, step=k)
            mlflow.log_metric("cost", fit.costs[k], step=k)
        mlflow.log_metrics({"chosen_k": fit.k, "chosen_silhouette": fit.silhouettes[fit.k],
                            "persons": float(assigned.count())})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            charts.silhouette_elbow(fit.silhouettes, fit.costs, fit.k, folder / "silhouette_elbow.png")
            charts.cluster_profile(profile_rows, labels, folder / "cluster_profile.png")
            pd.DataFrame(profile_rows).assign(persona=lambda d: d["cluster"].map(labels)).to_csv(
                folder / "cluster_profile.csv", index=False)
            for name in ("silhouette_elbow.png", "cluster_profile.png", "cluster_profile.csv"):
                mlflow.log_artifact(str(folder / name))
        mlflow.spark.log_model(fit.model, "model", pip_requirements=registry.requirements())
    return {Tables.SEGMENTS: segments, Tables.SEGMENT_PROFILE: profile}


def split_sizes(splits: dict[str, list[date]], per_date: dict[date, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """(persons, churned) per split from the counts per as-of date; a date absent from
    ``per_date`` (older than the purchase history: nobody has bought yet) counts as empty."""
    return {name: (sum(per_date.get(d, (0, 0))[0] for d in ds), sum(per_date.get(d, (0, 0))[1] for d in ds))
            for name, ds in splits.items()}


def churn_training(settings: Settings, purch: DataFrame, feats: DataFrame, splits: dict[str, list[date]], as_of: date,
                   tags: dict[str, str], stage: Callable[..., None],
                   on_commit: Callable[[Callable[[], None]], None] | None = None) -> dict[str, DataFrame]:
    """Tune, refit and register a churn model on time-split feature dates: ``churn_metrics``,
    ``churn_calibration`` and ``churn_roc`` rows (none when a split is too small). A winning
    model takes the champion alias through ``on_commit`` (the job's run commit) when given."""
    import mlflow
    from mlflow.models import infer_signature

    spark = feats.sparkSession
    cfg = settings.models.churn
    names = feature_names(settings.models)
    labelled = churn_labels(purch, feats.where(F.col("as_of_date").isin(
        [d for ds in splits.values() for d in ds])), cfg.horizon_days).localCheckpoint()
    parts = {name: labelled.where(F.col("as_of_date").isin(ds)) for name, ds in splits.items()}
    per_date = {row["as_of_date"]: (row["n"], row["pos"]) for row in labelled.groupBy("as_of_date").agg(
        F.count(F.lit(1)).alias("n"), F.sum("churned").alias("pos")).collect()}
    sizes = split_sizes(splits, per_date)
    for name, ds in splits.items():
        n, pos = sizes[name]
        if n < cfg.min_rows or pos in (0, n):
            stage("churn skipped: the %s split (%s) has %d persons, %d churned; need at least %d and both "
                      "classes (more history, or lower models.churn.horizon_days / min_rows)",
                      name, ", ".join(d.isoformat() for d in ds), n, int(pos), cfg.min_rows)
            return {}
    empty = sorted(d for ds in splits.values() for d in ds if d not in per_date)
    if empty:
        stage("churn: no person to label at %s (older than the purchase history, or a gap in it); "
              "the splits use their other dates",
              ", ".join(d.isoformat() for d in empty))
    stage("churn splits by time: %s", "; ".join(
        f"{name} {', '.join(d.isoformat() for d in ds)} ({sizes[name][0]} persons, "
        f"{sizes[name][1] / sizes[name][0]:.1%} churned)" for name, ds in splits.items()))
    train_rows = sizes["train"][0]
    if cfg.max_train_rows and train_rows > cfg.max_train_rows:
        parts["train"] = parts["train"].sample(fraction=cfg.max_train_rows / train_rows, seed=cfg.seed).localCheckpoint()
        stage("churn: training rows sampled from %d to about %d (models.churn.max_train_rows)", train_rows,
                  cfg.max_train_rows)
    candidates = churn.tune(parts["train"], parts["validation"], names, cfg)
    best = candidates[0]
    # The threshold comes from held-out scores: the selected candidate's on the validation split.
    validation = churn.score(best.model, parts["validation"]).localCheckpoint()
    threshold = churn.choose_threshold(validation, cfg.threshold)
    model, before_refit = best.model, {}
    if cfg.refit:
        unrefitted = churn.evaluate(churn.score(best.model, parts["test"]), "areaUnderROC")
        model = churn.fit(best.kind, best.params, parts["train"].unionByName(parts["validation"]), names, cfg)
        before_refit = {"test_roc_auc_before_refit": unrefitted}
        stage("churn: %s refitted on training + validation dates", best.kind)
    # The split the champion rule compares on: the newest one the model was not trained on; its
    # as-of date is also the last day whose outcome the model's training labels include.
    compare = "test" if cfg.refit else "validation"
    tested = churn.score(model, parts["test"]).localCheckpoint()
    report = churn.test_report(tested, threshold)
    baseline = churn.evaluate(parts["test"], "areaUnderROC", score="recency_days")
    btyd_name, btyd_baseline = btyd_only(parts["test"], settings.models.btyd_model, names)
    counts = churn.bucket_counts(tested)
    curve = churn.curves(counts)
    calib = churn.calibration(counts)
    importance = churn.importances(model, names)
    stage("churn: best %s %s (validation %s %.4f); test ROC AUC %.4f (%s) vs recency-only %.4f%s, PR AUC %.4f, "
              "top-decile lift %.2f", best.kind, best.params, cfg.metric, best.validation, report["roc_auc"],
              f"{before_refit['test_roc_auc_before_refit']:.4f} before the refit" if before_refit else "not refitted",
              baseline, f" and {btyd_name} {btyd_baseline:.4f}" if btyd_name else "", report["pr_auc"],
              report["top_decile_lift"])
    params = {"as_of": as_of.isoformat(), "features": ",".join(names),
              **{k: v for k, v in cfg.model_dump(mode="json").items() if k != "candidates"},
              "candidates": json.dumps(cfg.candidates, sort_keys=True), "best_model": best.kind,
              **{f"best.{k}": v for k, v in best.params.items()},
              **{f"split.{k}": ",".join(d.isoformat() for d in v) for k, v in splits.items()}}
    with tracked_run(settings, "churn", f"churn {as_of}", params, tags):
        mlflow.log_metrics({f"validation_{cfg.metric}": best.validation, "baseline_recency_roc_auc": baseline,
                            **({f"baseline_{btyd_name}_roc_auc": btyd_baseline} if btyd_name else {}),
                            **{f"test_{k}": v for k, v in report.items()}, **before_refit})
        for c in candidates:
            mlflow.log_metric(f"candidate.{c.kind}.{_params_key(c.params)}", c.validation)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            charts.roc(curve["fpr"], curve["tpr"], report["roc_auc"], baseline, folder / "roc.png")
            charts.pr(curve["recall"], curve["precision"], report["pr_auc"], report["churn_rate"], folder / "pr.png")
            charts.calibration(calib, folder / "calibration.png")
            pd.DataFrame(calib).to_csv(folder / "calibration.csv", index=False)
            pd.DataFrame(importance, columns=["feature", "importance"]).to_csv(folder / "feature_importance.csv",
                                                                             index=False)
            for name in ("roc.png", "pr.png", "calibration.png", "calibration.csv", "feature_importance.csv"):
                mlflow.log_artifact(str(folder / name))
        example = parts["test"].select(*names).limit(5).toPandas()
        signature = infer_signature(example, pd.DataFrame({"probability": [0.5] * len(example)}))
        rows = parts[compare]
        metric = best.validation if compare == "validation" else report[churn.REPORT_KEY[cfg.metric]]
        registered = registry.register(
            model, cfg.registered_model, f"{compare}_{cfg.metric}", metric,
            lambda champion_model: churn.evaluate(churn.score(champion_model, rows), cfg.metric),
            cfg.min_improvement, signature=signature, input_example=example, labels_through=splits[compare][0],
            on_commit=on_commit)
        mlflow.set_tags({"model_version": registered.version,
                         "role": registry.CHAMPION if registered.promoted else "challenger"})
    day = F.lit(as_of).alias("as_of_date")
    metric_rows = [(best.kind, "test", k, float(v)) for k, v in report.items()]
    metric_rows += [("recency_only", "test", "roc_auc", baseline)]
    metric_rows += [(btyd_name, "test", "roc_auc", btyd_baseline)] if btyd_name else []
    metric_rows += [(f"{best.kind} before refit", "test", "roc_auc", v) for v in before_refit.values()]
    metric_rows += [(c.kind + " " + _params_key(c.params), "validation", cfg.metric, c.validation) for c in candidates]
    metrics = spark.createDataFrame(metric_rows, "model string, split string, metric string, value double").select(
        day, F.lit(registered.version).alias("model_version"), F.lit(registered.promoted).alias("champion"), "*")
    calibration = spark.createDataFrame(pd.DataFrame(calib)).select(day, F.lit(registered.version).alias("model_version"), "*")
    roc = spark.createDataFrame(pd.DataFrame({k: curve[k] for k in ("threshold", "fpr", "tpr", "precision")})).select(
        day, F.lit(registered.version).alias("model_version"), "*")
    stage("churn model registered as %s v%s (%s)", cfg.registered_model, registered.version,
              "champion" if registered.promoted else f"challenger: the champion scores higher on the {compare} split")
    return {Tables.CHURN_METRICS: metrics, Tables.CHURN_CALIBRATION: calibration, Tables.CHURN_ROC: roc}


def btyd_only(test: DataFrame, model: str, names: list[str]) -> tuple[str | None, float]:
    """(``<model>_only``, test ROC AUC) of the transaction model's own churn ranking: fewer
    expected purchases over the horizon = more likely churned; (None, nan) without BTYD features."""
    if "btyd_expected_purchases" not in names:        # btyd_model none: no such feature
        return None, float("nan")
    ranked = test.withColumn("_btyd", -F.col("btyd_expected_purchases"))
    return f"{model}_only", churn.evaluate(ranked, "areaUnderROC", score="_btyd")


def _params_key(params: dict) -> str:
    return "_".join(f"{k}:{v}" for k, v in sorted(params.items())) or "default"
