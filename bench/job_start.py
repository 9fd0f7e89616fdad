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

    python bench/job_start.py --lakehouse L --landing D [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
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
    from memberlake.settings import load_settings

    package = load_settings("local").spark.delta_package
    env = {**os.environ, "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    py = sys.executable
    base = {"python -c pass": [py, "-c", "pass"],
            "import memberlake.cli": [py, "-c", "import memberlake.cli"],
            "plain PySpark + Delta session, one query, stop": [py, "-c", FLOOR.format(package=package)]}
    jobs = args.jobs.split(",")
    walls: dict[str, list[float]] = {name: [] for name in [*base, *jobs]}
    own: dict[str, list[float]] = {job: [] for job in jobs}
    for _ in range(args.rounds):
        for name, cmd in base.items():
            walls[name].append(timed(cmd, env)[0])
        for job in jobs:
            wall, console = timed([py, "-m", "memberlake.cli", job, "--lakehouse", args.lakehouse, "--landing",
                                   args.landing, "--set", "spark.master=local[2]"], env)
            walls[job].append(wall)
            own[job].append(job_seconds(job, console))
            print(f"{job}: {wall:.1f}s (own {own[job][-1]:.1f}s)", flush=True)
    med = {name: statistics.median(v) for name, v in walls.items()}
    floor = med["plain PySpark + Delta session, one query, stop"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"\n## a job started alone with nothing to do — `python bench/job_start.py --rounds {args.rounds}` — {stamp}\n"
    out = [heading,
           f"Machine: {platform.machine()}, {os.cpu_count()} cores; `local[2]`; each row a fresh process, median of "
           f"{args.rounds} rounds (rounds alternate the rows). The lakehouse had just been brought up to date, so each "
           "job finds nothing to do: its time is the fixed cost of starting it alone.\n",
           "| process | wall (s) | job's own time (s) | wall above the plain Spark + Delta session (s) |",
           "|---|---:|---:|---:|"]
    for name in base:
        extra = f"{med[name] - floor:.1f}" if name.startswith("plain") else "—"
        out.append(f"| {name} | {med[name]:.2f} | — | {extra} |")
    for job in jobs:
        out.append(f"| `memberlake {job}` | {med[job]:.1f} | {statistics.median(own[job]):.1f} | {med[job] - floor:.1f} |")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write(text)
    above = [med[j] - floor for j in jobs]
    bench_summary.record_into(args.results, "job_start", "a job started alone with nothing to do (fresh process)",
                              f"{min(med[j] for j in jobs):.1f}–{max(med[j] for j in jobs):.1f} s per job",
                              f"plain PySpark + Delta session {floor:.1f} s",
                              f"+{min(above):.1f} to +{max(above):.1f} s", "—", heading)


if __name__ == "__main__":
    main()
