"""campaigns: campaign contacts -> per-person outcomes and the readout against each control group.

For every campaign with contacts: per variant and metric (converted, orders, revenue, visited,
opened and clicked where given) the difference to the control with its interval and p-value
(Welch), the relative lift, a CUPED estimate with the same metric in the pre-period, a
sample-ratio check against the planned split, incremental totals and ROI with the cost per
contact. ``campaign_outcomes`` and ``campaign_results`` are recomputed whole; a run whose inputs
and settings did not change does nothing. docs/campaigns.md has the definitions.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.campaigns.readout import readout
from memberlake.contract import Tables
from memberlake.inputs import purchases
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "campaigns"
HELP = "Campaign readout: each variant against its control group (lift, intervals, p-values, CUPED, SRM, ROI)."


@dataclass(frozen=True)
class Options:
    """campaigns has only the common options."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """campaigns has only the common options."""


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    options(Options, args)
    with job_context(spark, settings, NAME, settings.campaigns.model_dump(mode="json")) as ctx:
        pseud = Pseudonymiser.from_settings(settings, spark)
        contacts = ctx.silver("campaign_contacts", pseudonymiser=pseud)
        if contacts is None:
            ctx.stage("no silver_campaign_contacts (the landing zone has no campaign contacts): nothing to do")
            return
        campaigns, graph = ctx.silver("campaigns"), ctx.graph()
        orders, items, sessions = ctx.silver("orders", pseudonymiser=pseud), ctx.silver("order_items"), ctx.table(Tables.SESSIONS)
        if ctx.unchanged([Tables.CAMPAIGN_RESULTS]):
            return
        purch = (purchases(orders, items, graph, None) if orders is not None
                 else spark.createDataFrame([], "person_id string, order_ts timestamp, net double"))
        ctx.publish(readout(contacts, campaigns, graph, purch, sessions, settings.campaigns, ctx.stage))


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
