"""reviews: silver reviews -> sentiment per review, per aspect, per product, per category, per person.

Every run rescores all reviews (lexicon scoring is one vectorised pass; the cross-fitted models
depend on every labelled review), so ``review_sentiment``, ``review_aspects``,
``product_sentiment`` and ``aspect_sentiment`` are overwritten; ``person_sentiment`` and
``sentiment_metrics`` keep one slice per as-of date (default: the last review's date) for
point-in-time use by loyalty and churn. A run whose inputs and settings did not change does
nothing. Each run is an MLflow run (experiment ``<prefix>-reviews``) with the held-out comparison;
each language's refitted model is registered before the tables are published, and its alias
moves when the run commits (docs/reviews.md).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.tracking import configure, tracked_run
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.reviews import champion
from memberlake.reviews.analysis import DATED, OVERWRITTEN, analyse, last_review_date, log_metrics
from memberlake.settings import Settings

NAME = "reviews"
HELP = "Score review sentiment (English, Chinese) and aspects; summarise by product, category and person."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """reviews has only the common options (--as-of dates person_sentiment)."""


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    with job_context(spark, settings, NAME) as ctx:
        reviews = ctx.silver("reviews", pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        if reviews is None:
            ctx.stage("no silver_reviews (the landing zone has no reviews): nothing to do")
            return
        products, graph = ctx.silver("products"), ctx.graph()
        ctx.table(Tables.PERSON_ID_MAP)   # a re-stitched graph changes person ids
        as_of = opts.as_of or last_review_date(reviews)
        ctx.run.parameters.update({"as_of": as_of.isoformat(), **settings.reviews.model_dump(mode="json")})
        if ctx.unchanged([*OVERWRITTEN, *DATED]):
            return
        configure(settings)
        out = analyse(reviews, products, graph, settings, as_of, ctx.stage,
                      champion=lambda language: champion.champion(settings, language))
        with tracked_run(settings, NAME, f"reviews {as_of}", ctx.run.parameters):
            for language, done in champion.register(settings, out.learnt, as_of, ctx.run.on_commit).items():
                ctx.stage("%s: model registered as %s v%s (%s)", language, champion.model_name(settings, language),
                          done.version, "champion" if done.promoted else "challenger")
            written = ctx.publish(out)
            ctx.stage("reviews %d, aspect mentions %d, products %d", written[Tables.REVIEW_SENTIMENT],
                      written[Tables.REVIEW_ASPECTS], written[Tables.PRODUCT_SENTIMENT])
            log_metrics(out.results, {**{t: written[t] for t in OVERWRITTEN}, **out.counts})


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
