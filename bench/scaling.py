"""Benchmark: how each job's time grows with the data (issue 24: linear is the goal).

For each scale, in a fresh process per scale (the JVM start and JIT warm-up are paid alike):
``memberlake generate --scale S`` (not timed), then ``memberlake pipeline --only
ingest,clean,identity,sessions,value`` with the same settings as ``bench/run.py`` (local[2],
12g driver, 16 shuffle partitions). Each job's time is read from its own ``done`` log line
(``[<job> <seconds>s] done: read {...}``), which also gives the rows it read.

Reported per job and scale: seconds, rows read, seconds per million rows read; and per job the
exponent ``b`` of ``time = a * scale^b``, a least-squares fit of log time on log scale (1.0 is
linear; below 1 the fixed costs still dominate; above 1 the job grows faster than the data).

    python bench/scaling.py --scales 0.1 0.3 1
"""
from __future__ import annotations

import argparse
import ast
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402

JOBS = ["ingest", "clean", "identity", "sessions", "value"]
DONE = re.compile(r"\[(?P<job>\w+)\s+(?P<secs>[\d.]+)s\] done: read (?P<read>\{.*?\})")


def _memberlake(*args: str) -> list[str]:
    return [sys.executable, "-m", "memberlake.cli", *args]


def job_times(log: str) -> dict[str, tuple[float, int]]:
    """(seconds, rows read) per job from a pipeline's console lines."""
    out = {}
    for m in DONE.finditer(log):
        read = ast.literal_eval(m["read"])
        out[m["job"]] = (float(m["secs"]), int(sum(v for v in read.values() if isinstance(v, int))))
    return out


def exponent(scales: list[float], secs: list[float]) -> float | None:
    """Least-squares slope of log(seconds) on log(scale)."""
    pts = [(math.log(s), math.log(t)) for s, t in zip(scales, secs, strict=True) if t > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", default=str(HERE / "out" / "scaling"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    sets = ["--set", "spark.shuffle_partitions=16", "--set", "spark.driver_memory=12g"]
    env = {**os.environ, "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    per_scale: dict[float, dict[str, tuple[float, int]]] = {}
    walls: dict[float, float] = {}
    for scale in args.scales:
        work = Path(args.workdir) / f"scale-{scale:g}"
        shutil.rmtree(work, ignore_errors=True)
        landing, lake = work / "landing", work / "lakehouse"
        subprocess.run(_memberlake("generate", "--scale", str(scale), "--seed", str(args.seed), "--out", str(landing),
                                   *sets), check=True, env=env, capture_output=True)
        t0 = time.perf_counter()
        done = subprocess.run(_memberlake("pipeline", "--only", ",".join(JOBS), "--landing", str(landing),
                                          "--lakehouse", str(lake), *sets),
                              env=env, capture_output=True, text=True)
        walls[scale] = time.perf_counter() - t0
        if done.returncode:
            sys.exit(f"pipeline at scale {scale} failed:\n{done.stderr[-3000:]}")
        per_scale[scale] = job_times(done.stdout + done.stderr)
        print(f"scale {scale:g}: {walls[scale]:.1f}s {per_scale[scale]}", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    write_results(args, per_scale, walls)


def write_results(args, per_scale, walls) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scales = sorted(per_scale)
    heading = f"\n## cost against scale, per job — `python bench/scaling.py --scales {' '.join(f'{s:g}' for s in scales)}` — {stamp}\n"
    out = [heading,
           f"Machine: {platform.machine()}, {os.cpu_count()} cores; Spark `local[2]`, driver 12g, 16 shuffle "
           f"partitions; seed {args.seed}; one process per scale (`memberlake pipeline --only {','.join(JOBS)}`), "
           "each job's time from its own log line. Rows = rows the job read.\n",
           "| job | " + " | ".join(f"scale {s:g}: s (rows; s per M rows)" for s in scales) + " | exponent |",
           "|---|" + "---:|" * (len(scales) + 1)]
    exps = {}
    for job in JOBS:
        cells, secs = [], []
        for s in scales:
            t, rows = per_scale[s].get(job, (0.0, 0))
            secs.append(t)
            cells.append(f"{t:.1f} ({rows:,}; {t / (rows / 1e6):.1f})" if rows else f"{t:.1f}")
        exps[job] = exponent(scales, secs)
        out.append(f"| {job} | " + " | ".join(cells) + f" | {'–' if exps[job] is None else f'{exps[job]:.2f}'} |")
    out.append("| whole pipeline process (wall, JVM start included) | "
               + " | ".join(f"{walls[s]:.1f}" for s in scales) + f" | {exponent(scales, [walls[s] for s in scales]) or 0:.2f} |")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write(text)
    shown = ", ".join(f"{j} {e:.2f}" for j, e in exps.items() if e is not None)
    bench_summary.record_into(args.results, "scaling", f"time against scale ({' / '.join(f'{s:g}' for s in scales)}), "
                              "exponent of time = a·scale^b per job", shown, "—", "—", "1.0 (linear)", heading)


if __name__ == "__main__":
    main()
