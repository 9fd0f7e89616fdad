"""campaign plan: the audience of one campaign, its suppressions, a random split and a control.

``memberlake campaign plan --campaign ID [--as-of DATE] [--out DIR] [--raw]`` reads the plan in
``campaigns.plans.ID``, writes ``campaign_assignments`` (every audience member: assigned with
variant and control flag, or suppressed with all reasons) and ``campaign_power`` (minimum
detectable effects), replacing only that campaign's rows, and exports the send list as CSV in
the ``campaign_contacts`` landing shape (e-mail and phone masked unless ``--raw``). Deliver the
file back as ``campaign_contacts`` once sent and the ``campaigns`` job reads the campaign out.
docs/campaigns.md has the rules.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import SparkSession

from memberlake.campaigns.plan import audience, contact_history, forgotten, latest, plan_campaign, reachable
from memberlake.contract import Tables
from memberlake.inputs import purchases
from memberlake.jobs.common import InputError, job_main, options
from memberlake.ops.context import job_context
from memberlake.privacy.pseudonymise import Pseudonymiser, masked
from memberlake.settings import Settings

NAME = "campaign"
HELP = "Plan a campaign: audience, suppression, salted-hash split with a control, power report, send list."


@dataclass(frozen=True)
class Options:
    action: str = "plan"
    campaign: str | None = None
    out: str | None = None
    raw: bool = False
    as_of: date | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["plan"], help="plan: assign the audience of --campaign")
    parser.add_argument("--campaign", required=True, help="campaign id, with its plan in campaigns.plans.<id>")
    parser.add_argument("--out", help="send-list folder (default: send_lists/<campaign>)")
    parser.add_argument("--raw", action="store_true", help="export e-mail and phone unmasked (for the sending tool)")


def check(settings: Settings, args: argparse.Namespace) -> None:
    """The campaign has a plan (before Spark starts)."""
    campaign = options(Options, args).campaign or ""
    if campaign not in settings.campaigns.plans:
        raise InputError(f"campaign plan: no plan for {campaign!r} in campaigns.plans: add one "
                         f"(known: {', '.join(sorted(settings.campaigns.plans)) or 'none'}); see docs/campaigns.md")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    check(settings, args)
    opts = options(Options, args)
    cfg = settings.campaigns
    plan = cfg.plans[opts.campaign]
    day = plan.send_at or opts.as_of or date.today()
    send_at = datetime.combine(day, datetime.min.time())
    params = {"campaign": opts.campaign, "plan": plan.model_dump(mode="json"), "send_at": day.isoformat()}
    with job_context(spark, settings, f"{NAME}_plan", params) as ctx:
        pseud = Pseudonymiser.from_settings(settings, spark)
        profile = ctx.table(Tables.MEMBER_PROFILE)
        if profile is None:
            raise InputError("campaign plan: member_profile not found: run `memberlake pipeline` (value) first")
        people = audience(profile, latest(ctx.table(Tables.CLV), day), latest(ctx.table(Tables.CHURN_SCORES), day),
                          latest(ctx.table(Tables.UPLIFT_SCORES), day))
        graph = ctx.graph()
        history = contact_history(ctx.silver("campaign_contacts", pseudonymiser=pseud), ctx.silver("campaigns"),
                                  graph, ctx.table(Tables.CAMPAIGN_ASSIGNMENTS), opts.campaign)
        orders = ctx.silver("orders", pseudonymiser=pseud)
        purch = (purchases(orders, ctx.silver("order_items"), graph, None) if orders is not None
                 else spark.createDataFrame([], "person_id string, order_ts timestamp, net double"))
        out = plan_campaign(opts.campaign, plan, cfg, send_at, people, reachable(ctx.silver("members"), graph),
                            history, forgotten(ctx.table(Tables.FORGET_REQUESTS), ctx.table(Tables.PERSON_ID_MAP)), purch,
                            ctx.stage)
        written = ctx.publish(out)
    folder = opts.out or f"send_lists/{opts.campaign}"
    send = out.send_list if opts.raw else masked(out.send_list, settings.privacy.pii_columns)
    send.coalesce(1).write.mode("overwrite").option("header", True).csv(folder)   # one file for the sending tool
    ctx.stage("send list of %s written to %s (%s)", opts.campaign, folder, "raw" if opts.raw else "masked")
    return written


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
