"""Benchmark: incremental matching of a batch of new member records against a full matching run.

On a bench lakehouse's silver members (prepared as the identity job prepares them), a batch of
records (``--batch``, a share chosen by a hash of the record id) is held out. Setup, not timed:
a full matching run on the other records, whose candidates and records are saved as the identity
job saves ``match_pairs`` and ``match_records`` (Parquet under ``--work``). Then, timed in the
same process: the incremental run over all records (changed records found, their pairs formed
and compared, the saved pairs reused), and a full run over all records; both followed by the
same training, scoring and accepted edges. Last, the two candidate sets are compared (they must
be equal) and the accepted pairs counted on both sides.

    python bench/matching_incremental.py --lakehouse /tmp/s1/lake --batch 0.01
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))
import summary as bench_summary  # noqa: E402
from matching_scale import session, session_arguments  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--batch", type=float, default=0.01, help="share of the records that arrive in the batch")
    parser.add_argument("--work", default="/tmp/memberlake-bench-incremental")
    session_arguments(parser)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    import platform
    from datetime import datetime, timezone

    from pyspark.sql import functions as F

    from memberlake.identity import matching, rematch
    from memberlake.identity.incremental import in_one_only
    from memberlake.io.delta import Lakehouse

    spark, settings = session(args)
    cfg = settings.identity.matching
    start = last = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def lap(step: str) -> float:
        nonlocal last
        now = time.perf_counter()
        took, last = now - last, now
        print(f"{took:8.1f} s {now - start:8.1f} s  {step}", flush=True)
        steps.append((step, took))
        return took

    records = matching.prepared(Lakehouse(args.lakehouse).read("silver_members")).localCheckpoint()
    in_batch = (F.abs(F.xxhash64("record")) % 10_000) < int(round(args.batch * 10_000))
    before = records.where(~in_batch).localCheckpoint()
    n_records, n_batch = records.count(), records.where(in_batch).count()
    lap(f"prepared records: {n_records:,}; batch: {n_batch:,} ({n_batch / n_records:.2%})")

    # setup: the last run, on the records before the batch, saved as the job saves it
    work = Path(args.work)
    last_pairs = matching.candidate_levels(matching.block(before, cfg).pairs, cfg.tf_fields)
    last_pairs.write.mode("overwrite").parquet(str(work / "match_pairs"))
    before.write.mode("overwrite").parquet(str(work / "match_records"))
    saved_pairs = spark.read.parquet(str(work / "match_pairs"))
    saved_records = spark.read.parquet(str(work / "match_records"))
    lap(f"setup (not part of either run): full matching of the {before.count():,} earlier records, "
        f"{saved_pairs.count():,} candidates saved")

    def finish(candidates, label: str) -> tuple[float, int]:
        """Training, scoring and accepted edges, as the job runs them after the candidates."""
        n_candidates = candidates.count()
        params = matching.train(spark, records, candidates, cfg)
        scored = matching.score_candidates(candidates, records, params, cfg, n_candidates, n_records).localCheckpoint()
        edges = matching.match_edges(scored, cfg).localCheckpoint()
        accepted = edges.count()
        return lap(f"{label}: training, scoring, accepted pairs {accepted:,}"), accepted

    t0 = time.perf_counter()
    done = rematch.rematch(records, saved_records, saved_pairs, cfg)
    incremental = done.candidates        # as the job uses them: the reused pairs read, not cached
    lap(f"incremental: {done.changed:,} records changed, {done.compared:,} pairs compared, "
        f"{incremental.count():,} candidates")
    _, accepted_inc = finish(incremental, "incremental")
    t_inc = time.perf_counter() - t0

    t0 = time.perf_counter()
    full = matching.cached_candidates(matching.candidate_levels(matching.block(records, cfg).pairs, cfg.tf_fields))
    lap(f"full: blocking and levels, {full.count():,} candidates")
    _, accepted_full = finish(full, "full")
    t_full = time.perf_counter() - t0

    cols = matching.CANDIDATE_COLUMNS
    differ = in_one_only(incremental.select(*cols), full.select(*cols), cols).count()
    lap(f"candidates in one run only: {differ}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"## incremental matching, {args.batch:.0%} batch of new records at 1M records — {stamp}"
    text = (f"\n{heading}\n\n`python bench/matching_incremental.py --lakehouse {args.lakehouse} --batch {args.batch}` "
            f"(commit {bench_summary._commit()}); {platform.python_implementation()} {platform.python_version()}, "
            f"Spark `local[2]`, driver {args.driver_memory}, {args.shuffle_partitions} shuffle partitions. "
            f"{n_records:,} prepared member records, {n_batch:,} of them the batch; "
            f"{done.changed:,} records changed (the batch, plus records of blocks that crossed the size limit), "
            f"{done.compared:,} pairs formed and compared; {full.count():,} candidates either way, "
            f"**{differ} differing**; accepted pairs {accepted_inc:,} incremental, {accepted_full:,} full.\n\n"
            "| step | seconds |\n|---|---:|\n" + "".join(f"| {name} | {took:.1f} |\n" for name, took in steps)
            + f"\nIncremental run **{t_inc:.1f} s** against a full run **{t_full:.1f} s** in the same process: "
            f"{t_full / t_inc:.1f}x faster. Both include training, scoring every candidate and the accepted "
            "pairs; neither includes writing match_pairs (the job writes it either way).\n")
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)
    bench_summary.record_into(args.results, "matching_incremental_1pct",
                              f"incremental matching, {n_batch:,} new records ({args.batch:.0%}) on {n_records:,}",
                              f"{t_inc:.1f} s", f"full matching, same run: {t_full:.1f} s",
                              f"{t_full / t_inc:.1f}x faster", "equal candidates; faster than a full run", heading)
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
