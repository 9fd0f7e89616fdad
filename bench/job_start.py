"""Benchmark: what a job started alone pays before and around its work (issue 24).

A scheduled task (``spark-submit``, a Databricks job task, cron) starts a fresh process for one
job: Python, the project's imports, the JVM and the Spark session with Delta, then the job's own
checks. On a lakehouse that a pipeline run has just brought up to date, every job has nothing to
do, so its process time is that fixed cost alone. Per job, in fresh processes (``--rounds`` each,
median): the process wall time, and the job's own time from its ``done`` line (from its run
record's start: reading its inputs' Delta logs and the run log to find nothing new, recording the
run). Beside them, in the same run:

- ``python -c pass`` and ``python -c "import memberlake.cli"``: the interpreter and the project's
  imports;
- a plain PySpark session with Delta's extension (``getOrCreate``, one tiny query, stop): the
  floor any Spark + Delta job pays on this machine, which the project does not add to.

Every job runs twice a round: with the JVM class archive (``spark.class_sharing``, the default;
made once by a first run before the rounds, in a folder of the bench's own) and without it
(``--set spark.class_sharing=false``), so the archive's saving is measured side by side.

    python bench/job_start.py --lakehouse L --landing D [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402

JOBS = ["ingest", "clean", "identity", "sessions", "value"]
DONE = re.compile(r"\[(?P<job>\w+)\s+(?P<secs>[\d.]+)s\] (?:done|.*nothing to do)")
FLOOR = """
from pyspark.sql import SparkSession
s = (SparkSession.builder.master("local[2]").config("spark.jars.packages", {package!r})
     .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
     .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
     .config("spark.ui.enabled", "false").getOrCreate())
s.range(1).collect()
s.stop()
"""


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-3000:]}")
    return wall, done.stdout + done.stderr


def job_seconds(job: str, console: str) -> float:
    """The job's own seconds: its last progress line before the end (``done`` or nothing to do)."""
    found = [float(m["secs"]) for m in DONE.finditer(console) if m["job"] == job]
    return found[-1] if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--landing", required=True)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "lib"))
    from memberlake.class_sharing import CACHE_ENV
    from memberlake.settings import load_settings

    package = load_settings("local").spark.delta_package
    cache = tempfile.mkdtemp(prefix="job-start-classes-")
    env = {**os.environ, "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable), CACHE_ENV: cache}
    py = sys.executable
    base = {"python -c pass": [py, "-c", "pass"],
            "import memberlake.cli": [py, "-c", "import memberlake.cli"],
            "plain PySpark + Delta session, one query, stop": [py, "-c", FLOOR.format(package=package)]}
    jobs = args.jobs.split(",")
    walls: dict[str, list[float]] = {name: [] for name in [*base, *jobs]}
    own: dict[str, list[float]] = {job: [] for job in jobs}
    without: dict[str, list[float]] = {job: [] for job in jobs}

    def job_cmd(job: str, *extra: str) -> list[str]:
        return [py, "-m", "memberlake.cli", job, "--lakehouse", args.lakehouse, "--landing", args.landing,
                "--set", "spark.master=local[2]", *extra]

    first, _ = timed(job_cmd(jobs[0]), env)       # records the classes and writes the archive
    made = [f for f in os.listdir(cache) if f.endswith(".jsa")]
    if not made:
        sys.exit("the first run wrote no class archive (is jcmd beside java?)")
    print(f"first {jobs[0]} (writes the class archive): {first:.1f}s", flush=True)
    for _ in range(args.rounds):
        for name, cmd in base.items():
            walls[name].append(timed(cmd, env)[0])
        for job in jobs:
            wall, console = timed(job_cmd(job), env)
            walls[job].append(wall)
            own[job].append(job_seconds(job, console))
            without[job].append(timed(job_cmd(job, "--set", "spark.class_sharing=false"), env)[0])
            print(f"{job}: {wall:.1f}s (own {own[job][-1]:.1f}s; without the archive {without[job][-1]:.1f}s)",
                  flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in walls.items()}
    floor = med["plain PySpark + Delta session, one query, stop"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"\n## a job started alone with nothing to do — `python bench/job_start.py --rounds {args.rounds}` — {stamp}\n"
    out = [heading,
           f"Machine: {platform.machine()}, {os.cpu_count()} cores; `local[2]`; each row a fresh process, median of "
           f"{args.rounds} rounds (rounds alternate the rows). The lakehouse had just been brought up to date, so each "
           "job finds nothing to do: its time is the fixed cost of starting it alone.\n",
           "| process | wall (s) | job's own time (s) | wall above the plain Spark + Delta session (s) "
           "| wall without the class archive (s) |",
           "|---|---:|---:|---:|---:|"]
    for name in base:
        extra = f"{med[name] - floor:.1f}" if name.startswith("plain") else "—"
        out.append(f"| {name} | {med[name]:.2f} | — | {extra} | — |")
    for job in jobs:
        out.append(f"| `memberlake {job}` | {med[job]:.1f} | {statistics.median(own[job]):.1f} | "
                   f"{med[job] - floor:.1f} | {statistics.median(without[job]):.1f} |")
    out.append(f"\nThe first `memberlake {jobs[0]}` (no archive yet: it records the classes it loads and writes "
               f"the archive after its work) took {first:.1f} s.")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write(text)
    above = [med[j] - floor for j in jobs]
    bench_summary.record_into(args.results, "job_start", "a job started alone with nothing to do (fresh process)",
                              f"{min(med[j] for j in jobs):.1f}–{max(med[j] for j in jobs):.1f} s per job "
                              f"(without the class archive {min(statistics.median(without[j]) for j in jobs):.1f}–"
                              f"{max(statistics.median(without[j]) for j in jobs):.1f} s)",
                              f"plain PySpark + Delta session {floor:.1f} s",
                              f"+{min(above):.1f} to +{max(above):.1f} s", "—", heading)


if __name__ == "__main__":
    main()
