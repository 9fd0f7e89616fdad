"""generate: write synthetic landing files and their ground truth (``memberlake generate``).

Members, orders, order items and products are written as CSV (with quoted commas and
newlines), events as JSON lines; the truth goes to ``<out>/_truth/`` as Parquet (the leading
underscore keeps it out of ingest).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.generate.landing import write_landing
from memberlake.generate.synth import GenConfig
from memberlake.jobs.common import InputError, job_main, options
from memberlake.settings import Settings

NAME = "generate"
HELP = "Generate a synthetic landing zone (members, orders, items, products, events, reviews, campaigns) with ground truth."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    scale: float | None = None
    seed: int | None = None
    out: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, help="1.0 = 1M member records, 5M orders, 10M events (default: generate.scale)")
    parser.add_argument("--seed", type=int, help="random seed (default: generate.seed)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: landing.path)")


def config(settings: Settings, opts: Options) -> GenConfig:
    g = settings.generate
    scale = opts.scale if opts.scale is not None else g.scale
    if scale <= 0:
        raise InputError("--scale must be positive, e.g. --scale 0.01")
    return GenConfig(
        scale=scale,
        seed=opts.seed if opts.seed is not None else g.seed,
        start=g.start_date,
        cutoff=g.cutoff_date,
        end=g.end_date,
        events_per_record=g.events_per_record,
        demand=g.demand,
    )


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    opts = options(Options, args)
    out = opts.out or settings.landing.path
    if not out:
        raise InputError("--out DIR is required (or set landing.path)")
    cfg = config(settings, opts)
    log.info("generate: scale %s seed %s -> %s (%d persons, ~%d records, ~%d orders, ~%d events)",
             cfg.scale, cfg.seed, out, cfg.n_persons, cfg.n_records, cfg.n_orders, cfg.n_events)
    return write_landing(spark, cfg, out)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
