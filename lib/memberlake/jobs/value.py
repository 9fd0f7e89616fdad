"""value: purchases -> RFM snapshot and segment migration, member profiles and tags, CLV.

Snapshot tables (``rfm``, ``rfm_segment_migration``, ``tag_coverage``, ``clv``,
``clv_parameters``, ``clv_holdout``) keep one slice per as-of date and a re-run of a date
replaces only that slice; ``member_profile`` is the profile as of the latest run. A run whose
inputs and parameters are unchanged since the last one is skipped. Each run is an MLflow run
(experiment ``<prefix>-value``) with the fitted CLV parameters and the holdout report.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.inputs import (
    latest_order_date,
    person_graph_or_empty,
    person_sentiment,
    purchased_lines,
    purchases,
    read_optional,
    read_silver,
)
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import job_main, migrate_snapshot_column, snapshot_predicate, write_slice
from memberlake.ops.runs import recorded_run, unchanged_since_last_run
from memberlake.ops.tracking import tracked_run
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings
from memberlake.value import clv
from memberlake.value.loyalty import category_breadth, loyalty
from memberlake.value.profile import profiles, tag_coverage, with_engagement, with_tags
from memberlake.value.rfm import migration, rfm_figures, rfm_scores, segment

NAME = "value"
HELP = "RFM snapshot and segments, member profiles and tags, customer lifetime value (BG/NBD, MBG/NBD or Pareto/NBD, chosen on a holdout, + Gamma-Gamma)."
log = logging.getLogger(__name__)

MIN_PERSONS_TO_FIT = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-clv", action="store_true", help="RFM and profiles only")


def previous_snapshot(spark: SparkSession, lake: Lakehouse, as_of: date) -> tuple[DataFrame | None, date | None]:
    if not lake.exists(spark, "rfm"):
        return None, None
    rfm = lake.read(spark, "rfm")
    before = rfm.where(F.col("as_of_date") < F.lit(as_of)).agg(F.max("as_of_date")).first()[0]
    if before is None:
        return None, None
    return rfm.where(F.col("as_of_date") == F.lit(before)), before


def lifetime_value(summary: DataFrame, purch: DataFrame, settings: Settings, as_of: date):
    """The transaction model chosen on the holdout (or pinned by ``value.clv.model``) fitted on
    all data, Gamma-Gamma, per-person CLV and the holdout comparison (None when too few repeat
    buyers)."""
    cfg = settings.value.clv
    repeaters = summary.where("frequency > 0 AND monetary_value > 0").count()
    if repeaters < MIN_PERSONS_TO_FIT:
        log.warning("CLV skipped: %d repeat buyers, at least %d needed for a fit", repeaters, MIN_PERSONS_TO_FIT)
        return None
    candidates = list(cfg.candidates) if cfg.model == "auto" else [cfg.model]
    holdout = clv.holdout_report(purch, as_of, cfg.holdout_days, cfg.max_iter, candidates)
    transactions_fit = clv.fit_transactions(summary, holdout.chosen, cfg.max_iter)
    gg = clv.fit_gamma_gamma(summary, cfg.max_iter)
    scored = clv.score(summary, transactions_fit, gg.params, cfg.horizon_days, cfg.discount_rate)
    return transactions_fit, gg, scored, holdout


def parameters_frame(spark: SparkSession, fits: list[clv.Fit], as_of: date, holdout: clv.Holdout | None = None) -> DataFrame:
    """One row per model parameter: the fits on all data (``fit = 'full'``; the models CLV uses,
    ``selected``) and each candidate's calibration fit with its holdout errors."""
    chosen = holdout.chosen if holdout else None
    rows = [(as_of, f.model, name, float(value), f.log_likelihood, f.iterations, f.converged, f.rows, "full", True,
             None, None) for f in fits for name, value in f.params.items()]
    for model, f in (holdout.fits.items() if holdout else ()):
        errors = holdout.errors[model]
        rows += [(as_of, model, name, float(value), f.log_likelihood, f.iterations, f.converged, f.rows, "calibration",
                  model == chosen, errors["mae"], errors["total_error"]) for name, value in f.params.items()]
    return spark.createDataFrame(rows, "as_of_date date, model string, parameter string, value double, "
                                       "log_likelihood double, iterations int, converged boolean, rows bigint, "
                                       "fit string, selected boolean, holdout_mae double, holdout_total_error double")


def log_to_mlflow(settings: Settings, as_of: date, params: dict, fits: list[clv.Fit], metrics: dict,
                  holdout: DataFrame | None, segments: DataFrame) -> None:
    import mlflow

    with tracked_run(settings, NAME, f"value {as_of}", params):
        for fit in fits:
            mlflow.log_params({f"{fit.model}.{k}": round(v, 6) for k, v in fit.params.items()})
            mlflow.log_metrics({f"{fit.model}.log_likelihood": fit.log_likelihood,
                                f"{fit.model}.iterations": fit.iterations, f"{fit.model}.converged": float(fit.converged)})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        if fits:
            mlflow.set_tag("clv_model", fits[0].model)
        with tempfile.TemporaryDirectory() as tmp:
            segments.toPandas().to_csv(Path(tmp) / "segment_sizes.csv", index=False)
            mlflow.log_artifact(str(Path(tmp) / "segment_sizes.csv"))
            if holdout is not None:
                holdout.orderBy("model", "calibration_frequency").toPandas().to_csv(Path(tmp) / "clv_holdout.csv", index=False)
                mlflow.log_artifact(str(Path(tmp) / "clv_holdout.csv"))


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    cfg = settings.value
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {}, monitoring=settings.monitoring) as run_:
        orders = read_silver(spark, lake, run_, "orders", required=True,
                             pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        items = read_silver(spark, lake, run_, "order_items", required=False)
        products = read_silver(spark, lake, run_, "products", required=False)
        person = read_optional(spark, lake, run_, "person")
        graph = person_graph_or_empty(spark, lake, run_)
        sessions = read_optional(spark, lake, run_, "sessions")   # engagement in the profile
        reviews = read_optional(spark, lake, run_, "review_sentiment")   # sentiment in the loyalty index
        as_of = getattr(args, "as_of", None) or latest_order_date(orders, NAME)
        skip_clv = bool(getattr(args, "skip_clv", False))
        run_.parameters.update({"as_of": as_of.isoformat(), "skip_clv": skip_clv, **cfg.model_dump(mode="json")})
        if unchanged_since_last_run(spark, lake, run_) and lake.exists(spark, "member_profile"):
            run_.stage("inputs and parameters unchanged since the last value run: nothing to do")
            return
        purch = purchases(orders, items, graph, as_of).localCheckpoint()
        scored = rfm_scores(rfm_figures(purch, as_of, cfg.window_days))
        rfm = scored.withColumn("segment", segment(cfg.segment_rules())).localCheckpoint()
        snapshot = rfm.select(F.lit(as_of).alias("as_of_date"), "*")
        previous, before = previous_snapshot(spark, lake, as_of)
        moves = migration(previous if previous is not None else rfm.limit(0), rfm, before, as_of)
        run_.stage("RFM: %d persons with purchases up to %s", rfm.count(), as_of)
        lines = purchased_lines(purch, items, products)
        engaged = with_engagement(profiles(rfm, purch, lines, person, as_of, cfg), sessions, as_of).localCheckpoint()
        outputs: dict[str, DataFrame] = {"rfm": snapshot, "rfm_segment_migration": moves}
        fits, metrics, holdout, per_person = [], {}, None, None
        if not skip_clv:
            summary = clv.btyd_summary(purch, as_of).localCheckpoint()
            result = lifetime_value(summary, purch, settings, as_of)
            if result is not None:
                chosen, gg, per_person, checked = result
                per_person = per_person.localCheckpoint()
                fits, holdout, metrics = [chosen, gg], checked.report, holdout_metrics(checked)
                outputs["clv"] = per_person.select(F.lit(as_of).alias("as_of_date"), "*")
                outputs["clv_parameters"] = parameters_frame(spark, fits, as_of, checked)
                outputs["clv_holdout"] = holdout
                run_.stage("CLV: %s %s (holdout error per person: %s); Gamma-Gamma %s; holdout predicted/actual %.3f",
                           chosen.model, _fmt(chosen.params),
                           ", ".join(f"{m} {e['mae']:.4f}" for m, e in checked.errors.items()), _fmt(gg.params),
                           metrics["holdout_ratio"])
        loyal = loyalty(
            rfm, purch, category_breadth(lines, as_of) if products is not None and items is not None else None,
            engaged.select("person_id", "sessions_90d", "engaged_session_share") if sessions is not None else None,
            per_person.select("person_id", "p_alive", "clv") if per_person is not None else None,
            person_sentiment(reviews, as_of, cfg.loyalty.trend_days).select("person_id", "mean_score", "trend")
            if reviews is not None else None, as_of, cfg.loyalty).localCheckpoint()
        outputs["loyalty"] = loyal
        profile = with_tags(engaged.join(loyal.select("person_id", "loyalty_index", "loyalty_tier"), "person_id", "left"),
                            cfg.tags).select(F.lit(as_of).alias("as_of_date"), "*").localCheckpoint()
        outputs["tag_coverage"] = tag_coverage(profile, cfg.tags, as_of)
        for table, df in outputs.items():
            migrate_snapshot_column(spark, lake, table)
            write_slice(spark, lake, run_, df, table, snapshot_predicate(as_of),
                        add_columns=table in ("clv_parameters", "clv_holdout"))   # model columns added later
        lake.overwrite(profile, "member_profile")
        run_.record_write("member_profile", profile.count(), lake.version(spark, "member_profile"))
        segments = rfm.groupBy("segment").agg(F.count(F.lit(1)).alias("persons")).orderBy(F.desc("persons"))
        log_to_mlflow(settings, as_of, run_.parameters, fits, metrics, holdout, segments)


def holdout_metrics(holdout: clv.Holdout) -> dict[str, float]:
    """MLflow metrics of the holdout: the chosen model's totals, and every candidate's error."""
    chosen = holdout.errors[holdout.chosen]
    metrics = {"holdout_actual": chosen["actual"], "holdout_predicted": chosen["predicted"],
               "holdout_mae": chosen["mae"],
               "holdout_ratio": chosen["predicted"] / chosen["actual"] if chosen["actual"] else float("nan")}
    for model, errors in holdout.errors.items():
        metrics[f"{model}.holdout_mae"] = errors["mae"]
        metrics[f"{model}.holdout_total_error"] = errors["total_error"]
    return metrics


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
