"""Benchmark: the identity job's probabilistic matching alone, step by step, on a bench lakehouse.

Runs what ``identity/resolve.py`` runs for matching — prepare the silver member records, block
on the configured rules, compare (levels), train (u from random pairs, m by EM), score, accepted
edges — with the job's caching, and prints the seconds of each step and the candidate count.
No peer here: ``bench/splink_compare.py`` compares the same matching with Splink; this script is
for the cost at scale of the blocking rules themselves (e.g. the default nine at 1M records).

    python bench/matching_scale.py --lakehouse /tmp/s1/lake [--rules 0,1,2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))


def session_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)


def session(args: argparse.Namespace):
    """(spark, settings) as the matching benches run: local settings, the memory and partitions given."""
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    settings = with_overrides(load_settings("local", [f"spark.driver_memory={args.driver_memory}",
                                                      f"spark.shuffle_partitions={args.shuffle_partitions}"]),
                              privacy={"require_key": False})
    return get_spark(settings), settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--rules", help="comma-separated indexes of identity.matching.blocking to keep (default all)")
    session_arguments(parser)
    args = parser.parse_args(argv)

    from memberlake.identity import matching
    from memberlake.io.delta import Lakehouse

    spark, settings = session(args)
    cfg = settings.identity.matching
    if args.rules:
        cfg = cfg.model_copy(update={"blocking": [cfg.blocking[int(i)] for i in args.rules.split(",")]})
    start = last = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        print(f"{now - last:8.1f} s {now - start:8.1f} s  {step}", flush=True)
        last = now

    records = matching.prepared(Lakehouse(args.lakehouse).read("silver_members")).localCheckpoint()
    n_records = records.count()
    lap(f"prepared records: {n_records:,}")
    candidates = matching.cached_candidates(matching.candidate_levels(matching.block(records, cfg).pairs, cfg.tf_fields))
    lap(f"blocking ({len(cfg.blocking)} rules) and levels")
    n_candidates = candidates.count()
    lap(f"candidates: {n_candidates:,}")
    params = matching.train(spark, records, candidates, cfg)
    lap("training (u, EM sessions, prior)")
    scored = matching.score_candidates(candidates, records, params, cfg, n_candidates, n_records).localCheckpoint()
    lap("scoring")
    edges = matching.match_edges(scored, cfg).localCheckpoint()
    lap(f"accepted pairs: {edges.count():,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
