"""identity: silver members, orders and events -> identity graph, persons and audit.

Deterministic stitching: identifiers seen together in a row are linked, guards drop links that
would merge different people (audited), probabilistic matching links member records, connected
components become persons. Edges and guards are derived from all of silver each run; matching
compares only the pairs that hold a member record changed since the last run; components and
stable ids are recomputed only where edges changed since the last run (``incremental``;
``--full`` recomputes everything, as does a change of the identity settings). A run whose silver
inputs and settings have not changed since the last successful run is skipped, so re-running
changes nothing.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.identity import matching
from memberlake.identity.resolve import INPUTS, MATCHING_STATE, STATE, State, resolve
from memberlake.jobs.common import MissingInput, job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.runs import same_parameters, unchanged
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "identity"
HELP = "Stitch member records, e-mails, phones, devices and cookies into one person_id."


@dataclass(frozen=True)
class Options:
    force: bool = False
    full: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="recompute even if silver has not changed")
    parser.add_argument("--full", action="store_true",
                        help="recompute every component (default: only those touched since the last run)")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    # The identity settings are the run's parameters: a changed guard or matching rule recomputes,
    # as does a release that compares records another way (the last run's levels are reused).
    parameters = {**settings.identity.model_dump(mode="json"), "comparisons": matching.COMPARISONS}
    with job_context(spark, settings, NAME, parameters) as ctx:
        frames = {name: ctx.silver(name) for name in INPUTS}
        if all(f is None for f in frames.values()):
            raise MissingInput("identity needs silver members, orders or events: run ingest and clean first")
        last = ctx.last_success()
        if not opts.force and unchanged(last, ctx.run):
            ctx.stage("silver and settings unchanged since the last identity run: nothing to do")
            return
        incremental = not opts.full and all(ctx.exists(n) for n in STATE)
        if incremental and not same_parameters(last, ctx.run):
            # A changed split size or strength can split components whose edges did not change.
            ctx.stage("identity settings changed since the last run: every component is recomputed")
            incremental = False
        elif opts.full:
            ctx.stage("--full: every component is recomputed")
        # A full recompute needs only the previous persons (stable ids), not the previous edges.
        wanted = {Tables.IDENTITY_EDGES: incremental, Tables.IDENTITY_GRAPH: True, Tables.PERSON_REGISTRY: True,
                  Tables.PERSON_ID_MAP: True, Tables.MATCH_PARAMETERS: not settings.identity.matching.retrain}
        previous = {n: ctx.lake.read(n).localCheckpoint() if want and ctx.exists(n) else None
                    for n, want in wanted.items()}
        # Read lazily (match_pairs holds every candidate pair): incremental matching reads the
        # unchanged pairs once into its own materialised candidates, before anything is written.
        lazy = {n: ctx.lake.read(n) if incremental and ctx.exists(n) else None for n in MATCHING_STATE}
        state = State(*previous.values(), match_records=lazy[Tables.MATCH_RECORDS], match_pairs=lazy[Tables.MATCH_PAIRS])
        out = resolve(frames["members"], frames["orders"], frames["events"], settings,
                      Pseudonymiser.from_settings(settings, spark), state, incremental, ctx.run.run_id, ctx.stage)
        ctx.publish(out)
        ctx.stage("persons: %d", ctx.lake.read(Tables.IDENTITY_GRAPH).select("person_id").distinct().count())


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
