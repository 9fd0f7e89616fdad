"""One identity run: edges, guards, matching, components and stable ids — as outputs.

:func:`resolve` is what the ``identity`` job runs between reading silver and the previous state
and publishing; it writes nothing itself.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.exprs import member_node
from memberlake.identity import incremental, matching, rematch
from memberlake.identity.graph import apply_guards, observed_edges
from memberlake.ops.context import Outputs
from memberlake.ops.tracking import tracked_run
from memberlake.settings import Settings

log = logging.getLogger(__name__)

INPUTS = ("members", "orders", "events")
# The last run's tables an incremental run builds on (a full one needs only the last two);
# matching is incremental when the last run also left MATCHING_STATE.
STATE = (Tables.IDENTITY_EDGES, Tables.IDENTITY_GRAPH, Tables.PERSON_REGISTRY)
MATCHING_STATE = (Tables.MATCH_RECORDS, Tables.MATCH_PAIRS)

GOLDEN_FIELDS = ["first_name", "last_name", "gender", "birth_date", "email", "phone", "street", "city",
                 "postcode", "state", "country", "marketing_opt_in"]


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


@dataclass
class Matched:
    edges: DataFrame              # member—member edges of accepted matches
    pairs: DataFrame              # match_pairs
    parameters: DataFrame | None  # new match_parameters, None when the saved ones were reused
    records: DataFrame            # match_records: the prepared records (the next run's baseline)


def probabilistic_edges(settings: Settings, members: DataFrame, saved: DataFrame | None, run_id: str,
                        stage: Callable[..., None], before: tuple[DataFrame, DataFrame] | None = None) -> Matched:
    """Fellegi-Sunter matching of the member records.

    Parameters are trained on this run's candidates (u from random pairs, m by EM), returned for
    ``match_parameters`` and logged to MLflow; with ``identity.matching.retrain`` false the saved
    ones (``saved``) are reused. ``before`` (the last run's ``match_records`` and ``match_pairs``)
    makes the candidates incremental: only pairs holding a record changed since then are formed
    and compared (``rematch.py``); the candidates are the same as without it.
    """
    import mlflow

    spark = members.sparkSession
    cfg = settings.identity.matching
    records = matching.prepared(members).localCheckpoint()
    if before is not None:
        done = rematch.rematch(records, *before, cfg)
        # not materialised (see Rematched); scored and edges below are, before anything is written
        candidates, skipped = done.candidates, done.giants.blocks
        stage("matching: incremental: %d records changed since the last run, %d candidate pairs compared",
              done.changed, done.compared)
    else:
        blocked = matching.block(records, cfg)
        candidates = matching.cached_candidates(matching.candidate_levels(blocked.pairs, cfg.tf_fields))
        skipped = blocked.skipped_blocks
    (n_candidates, per_rule), n_records = matching.rule_counts(candidates, cfg.blocking), records.count()
    giant = skipped.collect()  # one row per giant block: few by construction
    stage("matching: %d candidate pairs from %d records; per rule %s; %d blocks over %d records skipped%s",
              n_candidates, n_records, per_rule, len(giant), cfg.max_block_size,
              "".join(f"; {g.rule}={g.key!r}: {g.records}" for g in giant[:5]))
    params, table = None, None
    if not cfg.retrain and saved is not None:
        rows = saved.collect()   # fields x levels
        params = matching.Parameters.from_rows(rows, rows[0]["prior"]) if rows else None
    if params is None:
        params = matching.train(spark, records, candidates, cfg)
        table = spark.createDataFrame(params.rows(), "field string, level int, m double, u double").select(
            "*", F.lit(params.prior).alias("prior"), F.lit(params.iterations).alias("iterations"),
            F.lit(params.converged).alias("converged"), F.lit(run_id).alias("run_id"))
        with tracked_run(settings, "matching", f"matching {run_id}", cfg.model_dump(mode="json")):
            mlflow.log_metrics({"prior": params.prior, "em_iterations": params.iterations,
                                "em_converged": float(params.converged), "candidate_pairs": float(n_candidates),
                                **{f"m.{f}.{lvl}": m for f, lvl, m, _ in params.rows()},
                                **{f"u.{f}.{lvl}": u for f, lvl, _, u in params.rows()}})
    prior = matching.random_pair_prior(params, n_candidates, n_records)  # logged below
    scored = matching.score_candidates(candidates, records, params, cfg, n_candidates, n_records).localCheckpoint()
    edges = matching.match_edges(scored, cfg).localCheckpoint()
    if candidates.is_cached:   # scored holds what is written from here on
        candidates.unpersist()
    stage("matching: matches among candidates %.3f, random-pair prior %.2e; %d pairs accepted (probability "
              ">= %s, no veto)", params.prior, prior, edges.count(), cfg.threshold)
    return Matched(edges, matching.match_pairs(scored, cfg), table, records)


def incremental_matching_state(state: State) -> tuple[DataFrame, DataFrame] | None:
    """The last run's (match_records, match_pairs) when both exist in the current layout, else
    None (a full matching run)."""
    if state.match_records is None or state.match_pairs is None:
        return None
    if not set(matching.CANDIDATE_COLUMNS) <= set(state.match_pairs.columns):
        log.info("matching: match_pairs predates incremental matching: every pair is compared")
        return None
    return state.match_records, state.match_pairs


def registry_after(before: DataFrame | None, graph: DataFrame) -> DataFrame:
    """Every person id ever issued with the time it was first seen (decides which id survives)."""
    current = graph.select("person_id").distinct().select("person_id", F.current_timestamp().alias("first_seen"))
    if before is None:
        return current.localCheckpoint()
    return before.unionByName(current.join(before, "person_id", "left_anti")).localCheckpoint()


def id_map_after(before: DataFrame | None, history: DataFrame) -> DataFrame:
    """old person_id -> current person_id, following chains of merges."""
    merges = history.where(F.col("change") == "merged").select("old_id", "new_id")
    if before is not None:
        moved = before.join(merges.withColumnRenamed("old_id", "current_id"), "current_id", "left").select(
            "old_id", F.coalesce("new_id", "current_id").alias("current_id"))
    else:
        moved = history.sparkSession.createDataFrame([], "old_id string, current_id string")
    return moved.unionByName(merges.select("old_id", F.col("new_id").alias("current_id"))).distinct().localCheckpoint()


@dataclass
class State:
    """The last successful run's tables this run builds on, materialised (this run overwrites
    them); None where absent."""

    edges: DataFrame | None = None
    graph: DataFrame | None = None
    registry: DataFrame | None = None
    id_map: DataFrame | None = None
    match_parameters: DataFrame | None = None
    match_records: DataFrame | None = None   # read lazily: incremental matching reads what it needs
    match_pairs: DataFrame | None = None


def resolve(members: DataFrame | None, orders: DataFrame | None, events: DataFrame | None, settings: Settings,
            pseud, state: State, incremental_run: bool, run_id: str, stage: Callable[..., None]) -> Outputs:
    """Every identity table after this run; ``pseud`` (a Pseudonymiser) keys e-mails and phones
    after the guards; ``incremental_run`` recomputes only components whose edges changed."""
    edges = observed_edges(members, orders, events).localCheckpoint()
    kept, dropped = apply_guards(edges, settings.identity)
    out = Outputs()
    if settings.identity.matching.enabled and members is not None:
        before = incremental_matching_state(state) if incremental_run else None
        matched = probabilistic_edges(settings, members, state.match_parameters, run_id, stage, before)
        kept = kept.unionByName(matched.edges.select(*kept.columns))
        out.whole[Tables.MATCH_PAIRS] = matched.pairs
        out.whole[Tables.MATCH_RECORDS] = matched.records
        if matched.parameters is not None:
            out.whole[Tables.MATCH_PARAMETERS] = matched.parameters
    # Guards see raw values (blocked patterns); from here on e-mails and phones are keyed hashes.
    kept, dropped = pseud.edges(kept).localCheckpoint(), pseud.edges(dropped).localCheckpoint()
    stage("%d distinct edges, %d dropped by guards", edges.count(), dropped.count())
    spark = edges.sparkSession
    extra = (members.select(F.lit("member").alias("id_type"), member_node(F.col("source"), F.col("member_id")).alias("value"))
             if members is not None else spark.createDataFrame([], "id_type string, value string"))
    if incremental_run:
        resolved = incremental.incremental_recompute(kept, extra, settings.identity, state.edges, state.graph,
                                                     state.registry)
    else:
        resolved = incremental.full_recompute(kept, extra, settings.identity, state.graph, state.registry)
    kept, graph, history = resolved.kept, resolved.graph, resolved.history
    if resolved.split is not None:
        dropped = dropped.unionByName(resolved.split.select(*dropped.columns))
    stage("graph: %d identifiers, %d id changes (merges and splits)", graph.count(), history.count())
    oversized = (graph.where(F.col("component_size") > settings.identity.max_component_size)
                 .groupBy("person_id").agg(F.max("component_size").alias("size")))
    audit = dropped.select(
        "src_type", "src_value", "dst_type", "dst_value", "origin", "reason",
    ).unionByName(oversized.select(
        F.lit("person").alias("src_type"), F.col("person_id").alias("src_value"), F.lit(None).cast("string").alias("dst_type"),
        F.lit(None).cast("string").alias("dst_value"), F.lit("identity").alias("origin"),
        F.concat(F.lit("component_size:"), F.col("size").cast("string")).alias("reason")))
    out.whole.update({Tables.IDENTITY_EDGES: kept, Tables.IDENTITY_AUDIT: audit, Tables.IDENTITY_GRAPH: graph,
                      Tables.PERSON_REGISTRY: registry_after(state.registry, graph),
                      Tables.PERSON_ID_MAP: id_map_after(state.id_map, history)})
    if members is not None:
        out.whole[Tables.PERSON] = pseud.table(golden_records(members, graph))
    out.appended[Tables.PERSON_ID_HISTORY] = history.select("*", F.lit(run_id).alias("run_id"),
                                                       F.current_timestamp().alias("changed_at")).localCheckpoint()
    return out
