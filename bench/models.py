"""Benchmark: the models job (features + segmentation + churn tuning) and the score job at scale.

Runs both jobs in one Spark session on an existing lakehouse (default: the scale-1 silver tables
from ``bench/run.py``), with MLflow in a private sqlite store. Each job stage's end is taken
from the job's own stage log, so the table shows where the time goes; peak RSS covers this
process and the JVM.

    python bench/models.py --lakehouse bench/out/scale-1/lakehouse
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from argparse import Namespace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PeakMemory  # noqa: E402


class StageLog(logging.Handler):
    """Keeps (seconds since start, peak RSS so far, message) of every job stage line."""

    def __init__(self, memory: PeakMemory) -> None:
        super().__init__()
        self.memory = memory
        self.t0 = time.perf_counter()
        self.lines: list[tuple[float, float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.perf_counter() - self.t0, self.memory.peak / 1e9, record.getMessage()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lakehouse", default=str(HERE / "out" / "scale-1" / "lakehouse"))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--set", action="append", default=[], help="extra settings, e.g. models.churn.train_dates=3")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    from memberlake.io.delta import Lakehouse
    from memberlake.jobs import models, score
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    mlflow_dir = HERE / "out" / "mlflow-models"
    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       "spark.shuffle_partitions=16", f"tracking.local_dir={mlflow_dir}", *args.set])
    settings = with_overrides(settings, storage={"lakehouse": args.lakehouse})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    memory = PeakMemory().start()
    stages = StageLog(memory)
    logging.getLogger("memberlake.ops.runs").addHandler(stages)
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    lake = Lakehouse.from_settings(settings)
    walls = {}
    for job in (models, score):
        start = time.perf_counter()
        job.run(spark, settings, Namespace(as_of=None, skip_churn=False, skip_segments=False))
        walls[job.NAME] = time.perf_counter() - start
    persons = lake.read("churn_scores").count()
    features = lake.read("features").count()
    memory.stop()
    write_results(args, settings, stages.lines, walls, persons, features, memory.peak / 1e9)


def write_results(args, settings, lines, walls, persons: int, features: int, peak_gb: float) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cfg = settings.models
    out = [f"\n### models + score, {persons:,} persons scored — {stamp}\n",
           f"Machine: {platform.machine()}, CPython {platform.python_version()}; Spark `{args.master}`, driver "
           f"{args.driver_memory}, 16 shuffle partitions. Lakehouse `{args.lakehouse}`. Feature rows (all as-of "
           f"dates): {features:,}. Churn: {cfg.churn.train_dates} training dates, candidates "
           f"{sorted(cfg.churn.candidates)}; segmentation {cfg.segmentation.algorithm} k "
           f"{cfg.segmentation.k_min}-{cfg.segmentation.k_max} on at most {cfg.segmentation.max_fit_rows:,} rows.\n",
           "| job stage (end) | elapsed (s) | peak RSS so far (GB) |", "|---|---:|---:|"]
    for secs, peak, message in lines:
        out.append(f"| {message[:160].replace('|', '/')} | {secs:.1f} | {peak:.2f} |")
    out.append("")
    out.append(f"Wall time: models {walls['models']:.1f} s, score {walls['score']:.1f} s "
               f"({persons / walls['score']:,.0f} persons/s); peak RSS {peak_gb:.2f} GB.\n")
    text = "\n".join(out)
    print(text)
    with open(args.results, "a") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
