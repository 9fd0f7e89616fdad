"""Benchmark: memberlake's Fellegi-Sunter matching against Splink on the same records and blocking rules.

Both sides get the silver member records of a bench lakehouse, normalised once by
``matching.prepared`` (so neither side is judged on cleaning), and the configured blocking
rules: each rule's key, computed in Spark SQL as memberlake computes it (surname prefix, first
initial, soundex, street number — functions DuckDB lacks or spells differently), is given to
Splink as a column, so both compare exactly the same candidate pairs.

- memberlake: ``block`` → ``levels`` → ``train`` (u from random pairs, EM sessions) → ``score``
  with term frequencies → pairs accepted at the threshold (veto rules on), as the identity job does;
- Splink (``--engines duckdb spark``): the model its tutorials build for people data —
  ``NameComparison`` on both names with term-frequency adjustment, ``DateOfBirthComparison``,
  Levenshtein on the street, exact postcode and city; the prior from an exact name + birth date
  rule at recall 0.7, u by random sampling, m by EM sessions blocked on both names and on the birth date —
  and ``predict`` at the same threshold. On Spark it runs in this process's session with
  Splink's similarity-UDF jar on the class path.

Each side's pairs above the threshold are scored against the generator's truth, as pairs and
after transitive closure (connected components: the clusters the pairs imply), over all member
records. Matching alone is scored: the identity job's deterministic edges (e-mail, phone) are
not part of either side.

    python bench/splink_compare.py --lakehouse /tmp/s05/lake --truth /tmp/s05/landing/_truth
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lib"))

import summary as bench_summary  # noqa: E402
from run import PeakMemory  # noqa: E402


def rule_keys(rules: list[list[str]]):
    """(name, Spark column) per blocking rule: the key ``matching.block`` gives a record."""
    from memberlake.identity.matching import rule_key

    return [(f"_block{i}", rule_key(rule)) for i, rule in enumerate(rules)]


def spark_session(args):
    from splink.backends.spark import similarity_jar_location

    from memberlake.settings import load_settings
    from memberlake.spark import get_spark

    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       f"spark.shuffle_partitions={args.shuffle_partitions}"])
    conf = {**settings.spark.conf, "spark.jars": similarity_jar_location()}
    settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"conf": conf})})
    return get_spark(settings), settings


def memberlake_pairs(spark, settings, records):
    """Accepted pairs of memberlake's matching, as the identity job forms them."""
    from pyspark.sql import functions as F

    from memberlake.identity import matching

    cfg = settings.identity.matching
    blocked = matching.block(records, cfg)
    candidates = matching.cached_candidates(matching.candidate_levels(blocked.pairs, cfg.tf_fields))
    n_candidates, n_records = candidates.count(), records.count()
    params = matching.train(spark, records, candidates, cfg)
    scored = matching.score_candidates(candidates, records, params, cfg, n_candidates, n_records)
    pairs = scored.where(matching.accepted_pair(cfg)).select(F.col("l_record").alias("a"), F.col("r_record").alias("b"))
    return pairs.toPandas(), n_candidates


def splink_settings(keys: list[str]):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record",
        blocking_rules_to_generate_predictions=[block_on(k) for k in keys],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.LevenshteinAtThresholds("street", 2),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("city"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def splink_pairs(db_api, table, keys: list[str], threshold: float):
    """Pairs Splink predicts at the threshold, after training as its tutorials do."""
    from splink import Linker, block_on

    linker = Linker(db_api.register(table), splink_settings(keys))
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
    # m by EM on two sessions as its tutorials train people data: each leaves out what it blocks on
    for rule in (("first_name", "last_name"), ("birth_date",)):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    return predictions.as_pandas_dataframe()[["record_l", "record_r"]].rename(columns={"record_l": "a", "record_r": "b"})


def scores(pairs, truth) -> dict[str, float]:
    """Pairwise precision/recall/F1 of the pairs, and of the clusters their closure implies."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = {r: i for i, r in enumerate(truth["record"])}
    person = truth["person_id"].to_numpy()
    a = pairs["a"].map(index).to_numpy()
    b = pairs["b"].map(index).to_numpy()
    true_pairs = int((truth.groupby("person_id").size().pipe(lambda s: s * (s - 1) // 2)).sum())
    tp = int((person[a] == person[b]).sum())
    out = {"pairs": len(pairs), "pair_precision": tp / max(len(pairs), 1), "pair_recall": tp / true_pairs}
    n = len(truth)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    clusters = truth.assign(cluster=label)
    predicted = int(clusters.groupby("cluster").size().pipe(lambda s: s * (s - 1) // 2).sum())
    both = int(clusters.groupby(["cluster", "person_id"]).size().pipe(lambda s: s * (s - 1) // 2).sum())
    out.update(cluster_precision=both / max(predicted, 1), cluster_recall=both / true_pairs)
    for k in ("pair", "cluster"):
        p, r = out[f"{k}_precision"], out[f"{k}_recall"]
        out[f"{k}_f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--engines", nargs="+", default=["memberlake", "duckdb", "spark"],
                        choices=["memberlake", "duckdb", "spark"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--scores-json", help="also write each engine's scores here (bench/febrl.py reads them)")
    args = parser.parse_args(argv)

    import duckdb
    import splink
    from pyspark.sql import functions as F

    from memberlake.identity import matching

    spark, settings = spark_session(args)
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="splink-ckpt-"))
    members = spark.read.format("delta").load(f"{args.lakehouse}/silver_members")
    records = matching.prepared(members)
    block_keys = rule_keys(settings.identity.matching.blocking)
    records = records.select("*", *[column.alias(name) for name, column in block_keys]).localCheckpoint()
    keys = [name for name, _ in block_keys]
    threshold = settings.identity.matching.threshold      # both sides accept at the configured threshold
    n_records = records.count()
    folder = tempfile.mkdtemp(prefix="splink-records-")
    records.write.parquet(f"{folder}/records")
    truth = (spark.read.parquet(f"{args.truth}/members")
             .select(matching.member_node(F.col("source"), F.col("member_id")).alias("record"), "person_id")
             .join(records.select("record"), "record").toPandas())

    memory = PeakMemory().start()
    rows = []
    for engine in args.engines:
        memory.reset()
        t0 = time.perf_counter()
        extra = ""
        if engine == "memberlake":
            pairs, n_candidates = memberlake_pairs(spark, settings, records)
            extra = f"{n_candidates:,} candidate pairs"
        elif engine == "duckdb":
            from splink import DuckDBAPI

            con = duckdb.connect()
            con.execute("SET threads TO 2")
            con.execute(f"CREATE TABLE records AS SELECT * FROM read_parquet('{folder}/records/*.parquet')")
            pairs = splink_pairs(DuckDBAPI(connection=con), "records", keys, threshold)
        else:
            from splink import SparkAPI

            pairs = splink_pairs(SparkAPI(spark_session=spark), spark.read.parquet(f"{folder}/records"), keys, threshold)
        seconds = time.perf_counter() - t0
        score = scores(pairs, truth)
        rows.append((engine, seconds, memory.peak, score, extra))
        print(f"{engine}: {seconds:.1f} s, peak {memory.peak / 2**30:.1f} GiB, {extra} {score}", flush=True)
    memory.stop()
    write_results(args, n_records, truth, rows, splink.__version__, duckdb.__version__, threshold)
    if args.scores_json:
        Path(args.scores_json).write_text(json.dumps({engine: score for engine, _, _, score, _ in rows}), encoding="utf-8")
    return 0


def write_results(args, n_records, truth, rows, splink_version, duckdb_version, threshold: float) -> None:
    import psutil

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## Matching vs Splink — {stamp}\n",
             f"`python bench/splink_compare.py --lakehouse {args.lakehouse} --truth {args.truth}`; "
             f"{n_records:,} member records, {truth['person_id'].nunique():,} true persons; threshold {threshold} (both sides); "
             f"Splink {splink_version} (DuckDB {duckdb_version}, 2 threads; Spark `{args.master}`). Machine: "
             f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, CPython "
             f"{platform.python_version()}.\n",
             "| engine | wall (s) | records/s | peak RSS (GiB) | pairs | pair precision | pair recall | pair F1 "
             "| cluster precision | cluster recall | cluster F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, seconds, peak, s, _ in rows:
        lines.append(f"| {engine} | {seconds:.1f} | {n_records / seconds:,.0f} | {peak / 2**30:.1f} | {s['pairs']:,} | "
                     f"{s['pair_precision']:.4f} | {s['pair_recall']:.4f} | {s['pair_f1']:.4f} | "
                     f"{s['cluster_precision']:.4f} | {s['cluster_recall']:.4f} | {s['cluster_f1']:.4f} |")
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    by_engine = {engine: (seconds, s) for engine, seconds, _, s, _ in rows}
    if args.scores_json is None and {"memberlake", "duckdb"} <= by_engine.keys():   # bench/febrl.py records its own row
        (ours, mine), (theirs, peer) = by_engine["memberlake"], by_engine["duckdb"]
        bench_summary.record_into(args.results, "matching_1m" if n_records >= 500_000 else "matching_splink",
                                  f"matching, {n_records:,} member records (threshold {threshold})",
                                  f"{ours:.1f} s, F1 {mine['cluster_f1']:.3f}",
                                  f"Splink on DuckDB {theirs:.1f} s, F1 {peer['cluster_f1']:.3f}", f"{ours / theirs:.1f}x",
                                  "≤ 2x, F1 kept", lines[0])


if __name__ == "__main__":
    raise SystemExit(main())
