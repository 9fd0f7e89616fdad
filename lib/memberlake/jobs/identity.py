"""identity: silver members, orders and events -> identity graph, persons and audit.

Deterministic stitching: identifiers seen together in a row are linked, guards drop links that
would merge different people (audited), probabilistic matching links member records, connected
components become persons. Edges and guards are derived from all of silver each run; components
and stable ids are recomputed only where edges changed since the last run (``incremental``;
``--full`` recomputes everything, as does a change of the identity settings). A run whose silver
inputs and settings have not changed since the last successful run is skipped, so re-running
changes nothing.
"""
from __future__ import annotations

import argparse
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.identity import incremental, matching
from memberlake.identity.graph import apply_guards, member_node, observed_edges
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import MissingInput, job_main
from memberlake.ops.runs import Run, last_success, recorded_run, same_parameters, unchanged
from memberlake.ops.tracking import tracked_run
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "identity"
HELP = "Stitch member records, e-mails, phones, devices and cookies into one person_id."
log = logging.getLogger(__name__)

INPUTS = ("members", "orders", "events")
GOLDEN_FIELDS = ["first_name", "last_name", "gender", "birth_date", "email", "phone", "street", "city",
                 "postcode", "state", "country", "marketing_opt_in"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="recompute even if silver has not changed")
    parser.add_argument("--full", action="store_true",
                        help="recompute every component (default: only those touched since the last run)")


def golden_records(members: DataFrame, graph: DataFrame) -> DataFrame:
    """One row per person: each field's most recent non-null value across its member records."""
    member_ids = graph.where(F.col("id_type") == "member").select(F.col("value").alias("member_key"), "person_id")
    keyed = members.select("*", member_node(F.col("source"), F.col("member_id")).alias("member_key"))
    joined = keyed.join(member_ids, "member_key", "inner")
    fields = [F.max_by(F.col(f), F.when(F.col(f).isNotNull(), F.col("_version"))).alias(f) for f in GOLDEN_FIELDS]
    return joined.groupBy("person_id").agg(
        *fields,
        F.min("registered_at").alias("first_registered_at"),
        F.array_sort(F.collect_set("member_key")).alias("member_records"),
        F.array_sort(F.collect_set("source")).alias("sources"),
    )


def probabilistic_edges(spark: SparkSession, lake: Lakehouse, run: Run, settings: Settings,
                        members: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(member—member edges of accepted matches, match_pairs) by Fellegi-Sunter matching.

    Parameters are trained on this run's candidates (u from random pairs, m by EM), saved in
    ``match_parameters`` and logged to MLflow; with ``identity.matching.retrain`` false the saved
    ones are reused.
    """
    import mlflow

    cfg = settings.identity.matching
    records = matching.prepared(members).localCheckpoint()
    blocked = matching.block(records, cfg)
    candidates = matching.levels(blocked.pairs).localCheckpoint()
    (n_candidates, per_rule), n_records = matching.rule_counts(candidates, cfg.blocking), records.count()
    giant = blocked.skipped_blocks.collect()  # one row per giant block: few by construction
    run.stage("matching: %d candidate pairs from %d records; per rule %s; %d blocks over %d records skipped%s",
              n_candidates, n_records, per_rule, len(giant), cfg.max_block_size,
              "".join(f"; {g.rule}={g.key!r}: {g.records}" for g in giant[:5]))
    params = None
    if not cfg.retrain and lake.exists(spark, "match_parameters"):
        saved = lake.read(spark, "match_parameters").collect()
        params = matching.Parameters.from_rows(saved, saved[0]["prior"]) if saved else None
    if params is None:
        params = matching.train(spark, records, candidates, cfg)
        table = spark.createDataFrame(params.rows(), "field string, level int, m double, u double").select(
            "*", F.lit(params.prior).alias("prior"), F.lit(params.iterations).alias("iterations"),
            F.lit(params.converged).alias("converged"), F.lit(run.run_id).alias("run_id"))
        lake.overwrite(table, "match_parameters")
        run.record_write("match_parameters", len(params.rows()), lake.version(spark, "match_parameters"))
        with tracked_run(settings, "matching", f"matching {run.run_id}", cfg.model_dump(mode="json")):
            mlflow.log_metrics({"prior": params.prior, "em_iterations": params.iterations,
                                "em_converged": float(params.converged), "candidate_pairs": float(n_candidates),
                                **{f"m.{f}.{lvl}": m for f, lvl, m, _ in params.rows()},
                                **{f"u.{f}.{lvl}": u for f, lvl, _, u in params.rows()}})
    prior = matching.random_pair_prior(params, n_candidates, n_records)  # logged below
    scored = matching.score_candidates(candidates, records, params, cfg, n_candidates, n_records).localCheckpoint()
    edges = matching.match_edges(scored, cfg).localCheckpoint()
    run.stage("matching: matches among candidates %.3f, random-pair prior %.2e; %d pairs accepted (probability "
              ">= %s, no veto)", params.prior, prior, edges.count(), cfg.threshold)
    return edges, matching.match_pairs(scored, cfg)


STATE = ("identity_edges", "identity_graph", "person_registry")


def _previous_state(spark: SparkSession, lake: Lakehouse, names: tuple[str, ...]) -> dict[str, DataFrame]:
    """Those of the last run's ``names`` that exist, materialised (this run overwrites them)."""
    return {n: lake.read(spark, n).localCheckpoint() for n in names if lake.exists(spark, n)}


def registry_after(spark: SparkSession, lake: Lakehouse, graph: DataFrame, run: Run) -> DataFrame:
    """Every person id ever issued with the time it was first seen (decides which id survives)."""
    current = graph.select("person_id").distinct().select("person_id", F.current_timestamp().alias("first_seen"))
    if not lake.exists(spark, "person_registry"):
        return current.localCheckpoint()
    before = lake.read(spark, "person_registry")
    return before.unionByName(current.join(before, "person_id", "left_anti")).localCheckpoint()


def id_map_after(spark: SparkSession, lake: Lakehouse, history: DataFrame) -> DataFrame:
    """old person_id -> current person_id, following chains of merges."""
    merges = history.where(F.col("change") == "merged").select("old_id", "new_id")
    if lake.exists(spark, "person_id_map"):
        before = lake.read(spark, "person_id_map")
        moved = before.join(merges.withColumnRenamed("old_id", "current_id"), "current_id", "left").select(
            "old_id", F.coalesce("new_id", "current_id").alias("current_id"))
    else:
        moved = spark.createDataFrame([], "old_id string, current_id string")
    return moved.unionByName(merges.select("old_id", F.col("new_id").alias("current_id"))).distinct().localCheckpoint()


def _read_inputs(spark: SparkSession, lake: Lakehouse, run: Run) -> dict[str, DataFrame | None]:
    frames: dict[str, DataFrame | None] = {}
    for name in INPUTS:
        table = Tables.silver(name)
        if lake.exists(spark, table):
            run.record_read(table, version=lake.version(spark, table))
            frames[name] = lake.read(spark, table)
        else:
            frames[name] = None
    if frames["members"] is None and frames["orders"] is None and frames["events"] is None:
        raise MissingInput("identity needs silver members, orders or events: run ingest and clean first")
    return frames


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    lake = Lakehouse.from_settings(settings)
    # The identity settings are the run's parameters: a changed guard or matching rule recomputes.
    with recorded_run(spark, lake, NAME, settings.identity.model_dump(mode="json"),
                      monitoring=settings.monitoring) as run_:
        frames = _read_inputs(spark, lake, run_)
        last = last_success(spark, lake, NAME)
        if not getattr(args, "force", False) and unchanged(last, run_):
            run_.stage("silver and settings unchanged since the last identity run: nothing to do")
            return
        edges = observed_edges(frames["members"], frames["orders"], frames["events"]).localCheckpoint()
        kept, dropped = apply_guards(edges, settings.identity)
        pairs = None
        if settings.identity.matching.enabled and frames["members"] is not None:
            matched, pairs = probabilistic_edges(spark, lake, run_, settings, frames["members"])
            kept = kept.unionByName(matched.select(*kept.columns))
        # Guards see raw values (blocked patterns); from here on e-mails and phones are keyed hashes.
        pseud = Pseudonymiser.from_settings(settings, spark)
        kept, dropped = pseud.edges(kept).localCheckpoint(), pseud.edges(dropped).localCheckpoint()
        run_.stage("%d distinct edges, %d dropped by guards", edges.count(), dropped.count())
        members = frames["members"]
        extra = (members.select(F.lit("member").alias("id_type"), member_node(F.col("source"), F.col("member_id")).alias("value"))
                 if members is not None else spark.createDataFrame([], "id_type string, value string"))
        incremental_ok = all(lake.exists(spark, n) for n in STATE)
        if getattr(args, "full", False):
            run_.stage("--full: every component is recomputed")
            incremental_ok = False
        elif incremental_ok and not same_parameters(last, run_):
            # A changed split size or strength can split components whose edges did not change.
            run_.stage("identity settings changed since the last run: every component is recomputed")
            incremental_ok = False
        # A full recompute needs only the previous persons (stable ids), not the previous edges.
        previous = _previous_state(spark, lake, STATE if incremental_ok else STATE[1:])
        if incremental_ok:
            resolved = incremental.incremental_recompute(kept, extra, settings.identity, previous["identity_edges"],
                                                         previous["identity_graph"], previous["person_registry"])
        else:
            resolved = incremental.full_recompute(kept, extra, settings.identity, previous.get("identity_graph"),
                                                  previous.get("person_registry"))
        kept, graph, history = resolved.kept, resolved.graph, resolved.history
        if resolved.split is not None:
            dropped = dropped.unionByName(resolved.split.select(*dropped.columns))
        run_.stage("graph: %d identifiers, %d id changes (merges and splits)", graph.count(), history.count())
        oversized = (graph.where(F.col("component_size") > settings.identity.max_component_size)
                     .groupBy("person_id").agg(F.max("component_size").alias("size")))
        audit = dropped.select(
            "src_type", "src_value", "dst_type", "dst_value", "origin", "reason",
        ).unionByName(oversized.select(
            F.lit("person").alias("src_type"), F.col("person_id").alias("src_value"), F.lit(None).cast("string").alias("dst_type"),
            F.lit(None).cast("string").alias("dst_value"), F.lit("identity").alias("origin"),
            F.concat(F.lit("component_size:"), F.col("size").cast("string")).alias("reason")))
        outputs = {"identity_edges": kept, "identity_audit": audit, "identity_graph": graph,
                   "person_registry": registry_after(spark, lake, graph, run_),
                   "person_id_map": id_map_after(spark, lake, history)}
        if members is not None:
            outputs["person"] = pseud.table(golden_records(members, graph))
        if pairs is not None:
            outputs["match_pairs"] = pairs
        for table, df in outputs.items():
            lake.overwrite(df, table)
            run_.record_write(table, lake.read(spark, table).count(), lake.version(spark, table))
        lake.append(history.select("*", F.lit(run_.run_id).alias("run_id"), F.current_timestamp().alias("changed_at")),
                    "person_id_history")
        run_.stage("persons: %d", lake.read(spark, "identity_graph").select("person_id").distinct().count())


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
