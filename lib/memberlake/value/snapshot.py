"""One value snapshot: RFM and segment migration, profiles and tags, CLV, loyalty — as outputs.

:func:`snapshot` is what the ``value`` job runs between reading its inputs and publishing; it
writes nothing itself. :func:`log_run` records the snapshot's MLflow run.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.inputs import person_sentiment, purchased_lines, purchases
from memberlake.ops.context import Outputs
from memberlake.ops.tracking import tracked_run
from memberlake.settings import Settings, ValueSettings
from memberlake.tables import cell
from memberlake.value import clv
from memberlake.value.loyalty import category_breadth, loyalty
from memberlake.value.profile import profiles, tag_coverage, with_engagement, with_tags
from memberlake.value.rfm import migration, rfm_figures, rfm_scores, segment

log = logging.getLogger(__name__)

MIN_PERSONS_TO_FIT = 50
SNAPSHOT_TABLES = (Tables.RFM, Tables.RFM_SEGMENT_MIGRATION, Tables.CLV, Tables.CLV_PARAMETERS, Tables.CLV_HOLDOUT,
                   Tables.LOYALTY, Tables.TAG_COVERAGE)


@dataclass
class ValueInputs:
    orders: DataFrame
    items: DataFrame | None
    products: DataFrame | None
    person: DataFrame | None
    graph: DataFrame
    sessions: DataFrame | None          # engagement in the profile
    reviews: DataFrame | None           # review_sentiment: sentiment in the loyalty index
    rfm: DataFrame | None               # earlier snapshots, for the segment migration


@dataclass
class Value(Outputs):
    """The snapshot's tables, plus what its MLflow run logs."""

    fits: list[clv.Fit] | None = None
    holdout: clv.Holdout | None = None
    segments: DataFrame | None = None


def previous_snapshot(rfm: DataFrame | None, as_of: date) -> tuple[DataFrame | None, date | None]:
    """The latest RFM slice before ``as_of`` and its date."""
    if rfm is None:
        return None, None
    before = rfm.where(F.col("as_of_date") < F.lit(as_of)).agg(F.max("as_of_date")).first()[0]
    if before is None:
        return None, None
    return rfm.where(F.col("as_of_date") == F.lit(before)), before


def lifetime_value(summary: DataFrame, purch: DataFrame, cfg: ValueSettings, as_of: date):
    """The transaction model chosen on the holdout (or pinned by ``value.clv.model``) fitted on
    all data, Gamma-Gamma, per-person CLV and the holdout comparison (None when too few repeat
    buyers)."""
    cfg_clv = cfg.clv
    repeaters = summary.where("frequency > 0 AND monetary_value > 0").count()
    if repeaters < MIN_PERSONS_TO_FIT:
        log.warning("CLV skipped: %d repeat buyers, at least %d needed for a fit", repeaters, MIN_PERSONS_TO_FIT)
        return None
    candidates = list(cfg_clv.candidates) if cfg_clv.model == "auto" else [cfg_clv.model]
    holdout = clv.holdout_report(purch, as_of, cfg_clv.holdout_days, cfg_clv.max_iter, candidates)
    transactions_fit = clv.fit_transactions(summary, holdout.chosen, cfg_clv.max_iter)
    gg = clv.fit_gamma_gamma(summary, cfg_clv.max_iter)
    intervals = clv.Intervals(gg, cfg_clv.interval_level, cfg_clv.interval_samples, cfg_clv.interval_seed)
    scored = clv.score(summary, transactions_fit, gg.params, cfg_clv.horizon_days, cfg_clv.discount_rate, intervals)
    return transactions_fit, gg, scored, holdout


def parameters_frame(spark: SparkSession, fits: list[clv.Fit], as_of: date, holdout: clv.Holdout | None = None) -> DataFrame:
    """One row per model parameter: the fits on all data (``fit = 'full'``; the models CLV uses,
    ``selected``) and each candidate's calibration fit with its holdout errors, each with its
    standard error and its row of the log-parameter covariance."""
    chosen = holdout.chosen if holdout else None
    rows = [(as_of, f.model, name, float(value), f.log_likelihood, f.iterations, f.converged, f.rows, "full", True,
             None, None, cell(f.std_errors[name]), _covariance_row(f, i))
            for f in fits for i, (name, value) in enumerate(f.params.items())]
    for model, f in (holdout.fits.items() if holdout else ()):
        errors = holdout.errors[model]
        rows += [(as_of, model, name, float(value), f.log_likelihood, f.iterations, f.converged, f.rows, "calibration",
                  model == chosen, errors["mae"], errors["total_error"], cell(f.std_errors[name]), _covariance_row(f, i))
                 for i, (name, value) in enumerate(f.params.items())]
    return spark.createDataFrame(rows, "as_of_date date, model string, parameter string, value double, "
                                       "log_likelihood double, iterations int, converged boolean, rows bigint, "
                                       "fit string, selected boolean, holdout_mae double, holdout_total_error double, "
                                       "std_error double, log_covariance array<double>")


def _covariance_row(fit: clv.Fit, i: int) -> list[float] | None:
    """Row ``i`` of the fit's covariance of the log-parameters (parameter order), so readers such
    as the customer-base forecast can rebuild the matrix; None without one."""
    return None if fit.log_covariance is None else [float(v) for v in fit.log_covariance[i]]


def snapshot(inputs: ValueInputs, cfg: ValueSettings, as_of: date, skip_clv: bool,
             stage: Callable[..., None]) -> Value:
    """Every value table for ``as_of``: dated slices, and ``member_profile`` (the latest profile)."""
    stamp = F.lit(as_of).alias("as_of_date")
    purch = purchases(inputs.orders, inputs.items, inputs.graph, as_of).localCheckpoint()
    rfm = rfm_scores(rfm_figures(purch, as_of, cfg.window_days)).withColumn(
        "segment", segment(cfg.segment_rules())).localCheckpoint()
    previous, before = previous_snapshot(inputs.rfm, as_of)
    # tables whose columns grew in later versions
    out = Value(as_of=as_of, add_columns=frozenset({Tables.CLV, Tables.CLV_PARAMETERS, Tables.CLV_HOLDOUT}))
    out.slices[Tables.RFM] = rfm.select(stamp, "*")
    out.slices[Tables.RFM_SEGMENT_MIGRATION] = migration(previous if previous is not None else rfm.limit(0), rfm, before, as_of)
    stage("RFM: %d persons with purchases up to %s", rfm.count(), as_of)
    lines = purchased_lines(purch, inputs.items, inputs.products)
    engaged = with_engagement(profiles(rfm, purch, lines, inputs.person, as_of, cfg), inputs.sessions,
                              as_of).localCheckpoint()
    per_person = None
    if not skip_clv:
        summary = clv.btyd_summary(purch, as_of).localCheckpoint()
        result = lifetime_value(summary, purch, cfg, as_of)
        if result is not None:
            chosen, gg, per_person, checked = result
            per_person = per_person.localCheckpoint()
            out.fits, out.holdout = [chosen, gg], checked
            out.counts = checked.metrics()
            out.slices[Tables.CLV] = per_person.select(stamp, "*")
            out.slices[Tables.CLV_PARAMETERS] = parameters_frame(purch.sparkSession, out.fits, as_of, checked)
            out.slices[Tables.CLV_HOLDOUT] = checked.report
            stage("CLV: %s %s (holdout error per person: %s); Gamma-Gamma %s; holdout predicted/actual %.3f",
                  chosen.model, _fmt(chosen.params), ", ".join(f"{m} {e['mae']:.4f}" for m, e in checked.errors.items()),
                  _fmt(gg.params), out.counts["holdout_ratio"])
    breadth = category_breadth(lines, as_of) if inputs.products is not None and inputs.items is not None else None
    loyal = loyalty(
        rfm, purch, breadth,
        engaged.select("person_id", "sessions_90d", "engaged_session_share") if inputs.sessions is not None else None,
        per_person.select("person_id", "p_alive", "clv") if per_person is not None else None,
        person_sentiment(inputs.reviews, as_of, cfg.loyalty.trend_days).select("person_id", "mean_score", "trend")
        if inputs.reviews is not None else None, as_of, cfg.loyalty).localCheckpoint()
    out.slices[Tables.LOYALTY] = loyal
    profile = with_tags(engaged.join(loyal.select("person_id", "loyalty_index", "loyalty_tier"), "person_id", "left"),
                        cfg.tags).select(stamp, "*").localCheckpoint()
    out.slices[Tables.TAG_COVERAGE] = tag_coverage(profile, cfg.tags, as_of)
    out.whole[Tables.MEMBER_PROFILE] = profile
    out.segments = rfm.groupBy("segment").agg(F.count(F.lit(1)).alias("persons")).orderBy(F.desc("persons"))
    return out


def log_run(settings: Settings, job: str, params: dict, value: Value) -> None:
    """The snapshot's MLflow run: fitted parameters, holdout metrics, segment sizes, holdout table."""
    import mlflow

    fits = value.fits or []
    with tracked_run(settings, job, f"value {value.as_of}", params):
        for fit in fits:
            mlflow.log_params({f"{fit.model}.{k}": round(v, 6) for k, v in fit.params.items()})
            mlflow.log_metrics({f"{fit.model}.{k}.std_error": v for k, v in fit.std_errors.items() if v == v})
            mlflow.log_metrics({f"{fit.model}.log_likelihood": fit.log_likelihood,
                                f"{fit.model}.iterations": fit.iterations, f"{fit.model}.converged": float(fit.converged)})
        mlflow.log_metrics({k: v for k, v in value.counts.items() if v == v})
        if fits:
            mlflow.set_tag("clv_model", fits[0].model)
        with tempfile.TemporaryDirectory() as tmp:
            value.segments.toPandas().to_csv(Path(tmp) / "segment_sizes.csv", index=False)   # one row per segment
            mlflow.log_artifact(str(Path(tmp) / "segment_sizes.csv"))
            if value.holdout is not None:
                value.holdout.report.orderBy("model", "calibration_frequency").toPandas().to_csv(
                    Path(tmp) / "clv_holdout.csv", index=False)
                mlflow.log_artifact(str(Path(tmp) / "clv_holdout.csv"))


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())
