"""Benchmark: the pipeline on a Spark standalone cluster on loopback, 1 and 2 workers (issue 24).

One landing zone (``memberlake generate --scale S``, not timed) is run through ``spark-submit
jobs/pipeline.py --env cluster --only ingest,clean,identity,sessions,value`` once per worker
count, each on a fresh lakehouse and a fresh cluster (a master and N workers of
``--worker-cores`` cores each, started from the pip pyspark's ``spark-class``), and, with
``--local``, once more on ``local[2]`` in one JVM for the same run's reference. The wheel is
built from this checkout and shipped with ``--py-files``; Delta comes with ``--packages``.

Spark's event log is on for every run. Each task is given to the memberlake job whose time
window (from the job's ``done`` console line and its seconds) holds the task's launch, and per
job the script reports: wall seconds, executor run time and CPU time summed over tasks, shuffle
bytes written, the largest single stage's shuffle write, spill, and the executors' peak JVM heap.
Per 100M landing rows, the shuffle volumes give the partitions a cluster needs at ~128 MB per
shuffle partition; docs/operations.md's sizing guide is written from these figures.

    python bench/cluster.py --scale 0.1 --workers 1 2 --local
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pyspark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402
from scaling import DONE  # noqa: E402

SPARK_HOME = Path(pyspark.__file__).parent
JOBS = ["ingest", "clean", "identity", "sessions", "value"]
PARTITION_BYTES = 128 * 1024 ** 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def standalone(workers: int, cores: int, memory: str, work: Path, env: dict) -> Iterator[str]:
    """A master and ``workers`` workers on loopback; yields the master URL; stops them all."""
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")

    def start(args: list[str], name: str) -> subprocess.Popen:
        return subprocess.Popen([spark_class, *args], stdout=(work / f"{name}.log").open("w"),
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)

    procs = [start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(ui)], "master")]
    procs += [start(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", str(cores),
                     "--memory", memory, "--webui-port", str(_free_port()), "--work-dir", str(work / f"work{i}")],
                    f"worker{i}") for i in range(workers)]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
                    if int(json.load(r).get("aliveworkers", 0)) >= workers:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                sys.exit(f"the standalone cluster did not come up; logs in {work}")
            time.sleep(1)
        yield url
    finally:
        _stop(procs)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group, SIGKILL to those still up 30 s later."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        with suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)


def run_pipeline(submit: list[str], env: dict, log: Path) -> tuple[float, dict[str, tuple[float, float]], int]:
    """Run ``submit``, stamping each console line: wall seconds, {job: (start, end) epoch seconds}, and
    the landing rows ingest read."""
    windows: dict[str, tuple[float, float]] = {}
    rows = 0
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(submit, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=log.parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.time()
            out.write(line)
            out.flush()
            m = DONE.search(line)
            if m:
                windows[m["job"]] = (now - float(m["secs"]), now)
                if m["job"] == "ingest":
                    rows = sum(v for v in ast.literal_eval(m["read"]).values() if isinstance(v, int))
        code = proc.wait()
    wall = time.perf_counter() - t0
    if code:
        sys.exit(f"the pipeline failed ({code}); its console is in {log}")
    return wall, windows, rows


def _events(files: list[Path]) -> Iterator[dict]:
    for path in files:
        with path.open(encoding="utf-8") as fh:
            yield from (json.loads(line) for line in fh)


def event_log_metrics(event_dir: Path, windows: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    """Per memberlake job, from Spark's event log: task time, CPU, shuffle, spill, peak JVM heap."""
    # one file, or (Spark 4's default, rolling) a folder of events_<n>_<app> files
    files = sorted((p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))),
                   key=lambda p: int(p.name.split("_")[1]) if p.name.startswith("events_") else 0)
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    stage_shuffle: dict[tuple[str, int], float] = defaultdict(float)
    stage_job: dict[int, str] = {}

    def job_at(ms: float) -> str | None:
        return next((j for j, (a, b) in windows.items() if a - 0.5 <= ms / 1000 <= b + 0.5), None)

    for ev in _events(files):
        kind = ev.get("Event")
        if kind == "SparkListenerTaskEnd" and ev.get("Task Metrics"):
            job = job_at(ev["Task Info"]["Launch Time"])
            if job is None:
                continue
            stage_job[ev["Stage ID"]] = job
            m, acc = ev["Task Metrics"], per[job]
            acc["tasks"] += 1
            acc["run_s"] += m.get("Executor Run Time", 0) / 1000
            acc["cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
            written = m.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
            acc["shuffle_write"] += written
            stage_shuffle[(job, ev["Stage ID"])] += written
            read = m.get("Shuffle Read Metrics", {})
            # executors on one host read each other's shuffle files from disk: counted as local
            acc["shuffle_read"] += read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
            acc["spill_disk"] += m.get("Disk Bytes Spilled", 0)
            acc["input"] += m.get("Input Metrics", {}).get("Bytes Read", 0)
        elif kind == "SparkListenerStageExecutorMetrics" and ev.get("Executor ID") != "driver":
            job = stage_job.get(ev.get("Stage ID"))
            if job is not None:
                heap = ev.get("Executor Metrics", {}).get("JVMHeapMemory", 0)
                per[job]["peak_heap"] = max(per[job]["peak_heap"], heap)
    for (job, _), written in stage_shuffle.items():
        per[job]["max_stage_shuffle"] = max(per[job]["max_stage_shuffle"], written)
    return per


def one_run(name: str, master: str, args, wheel: Path, landing: Path, work: Path, env: dict) -> dict:
    lake, events = work / f"lake-{name}", work / f"events-{name}"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master, "--deploy-mode", "client",
              "--driver-memory", args.driver_memory if master.startswith("spark://") else args.local_driver_memory,
              "--py-files", str(wheel), "--packages", args.delta,
              "--conf", f"spark.pyspark.python={sys.executable}", "--conf", "spark.ui.enabled=false",
              "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events}",
              "--conf", "spark.eventLog.compress=false", "--conf", "spark.eventLog.logStageExecutorMetrics=true"]
    if master.startswith("spark://"):
        submit += ["--conf", f"spark.executor.memory={args.executor_memory}",
                   "--conf", f"spark.executor.cores={args.worker_cores}"]
    submit += [str(ROOT / "jobs" / "pipeline.py"), "--env", "cluster", "--only", ",".join(JOBS),
               "--landing", str(landing), "--lakehouse", str(lake),
               "--set", f"spark.shuffle_partitions={args.shuffle_partitions}"]
    wall, windows, rows = run_pipeline(submit, env, work / f"console-{name}.log")
    missing = [j for j in JOBS if j not in windows]
    if missing:
        sys.exit(f"{name}: no done line for {missing}; see {work / f'console-{name}.log'}")
    metrics = event_log_metrics(events, windows)
    print(f"{name}: {wall:.1f}s " + ", ".join(f"{j} {b - a:.1f}s" for j, (a, b) in windows.items()), flush=True)
    shutil.rmtree(lake, ignore_errors=True)
    return {"wall": wall, "rows": rows, "secs": {j: b - a for j, (a, b) in windows.items()}, "metrics": metrics}


def _gb(b: float) -> str:
    return f"{b / 1024 ** 3:.2f}"


def write_results(args, runs: dict[str, dict], rows: int) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = list(runs)
    heading = (f"\n## pipeline on a standalone cluster, 1 and 2 workers — `python bench/cluster.py --scale {args.scale:g}"
               f" --workers {' '.join(map(str, args.workers))}{' --local' if args.local else ''}` — {stamp}\n")
    out = [heading,
           f"Machine: {platform.machine()}, {os.cpu_count()} cores. Landing: `generate --scale {args.scale:g} --seed "
           f"{args.seed}`, {rows:,} rows. Workers of {args.worker_cores} core(s), executors of {args.executor_memory}, "
           f"driver {args.driver_memory} (client mode; local[2]: one JVM of {args.local_driver_memory}), {args.shuffle_partitions} shuffle partitions; one fresh "
           "cluster and lakehouse per run; `spark-submit jobs/pipeline.py --env cluster --only "
           f"{','.join(JOBS)}`. Per job: wall seconds from its log line; from Spark's event log, task run time "
           "and CPU summed over tasks, shuffle written (all stages, and the largest stage), spill, executors' "
           "peak JVM heap.\n",
           "| job | " + " | ".join(f"{n}: s" for n in names) + " | " + " | ".join(
               f"{n}: task s / CPU s" for n in names) + " |",
           "|---|" + "---:|" * (2 * len(names))]
    for job in [*JOBS, "whole process"]:
        if job == "whole process":
            secs = [f"**{runs[n]['wall']:.1f}**" for n in names]
            tasks = [f"{sum(m['run_s'] for m in runs[n]['metrics'].values()):.0f} / "
                     f"{sum(m['cpu_s'] for m in runs[n]['metrics'].values()):.0f}" for n in names]
        else:
            secs = [f"{runs[n]['secs'][job]:.1f}" for n in names]
            tasks = [f"{runs[n]['metrics'][job]['run_s']:.0f} / {runs[n]['metrics'][job]['cpu_s']:.0f}" for n in names]
        out.append(f"| {job} | " + " | ".join(secs) + " | " + " | ".join(tasks) + " |")
    ref = [n for n in names if n.startswith("workers=")][-1]
    per100m = 1e8 / rows
    out += ["", f"Shuffle and memory per job ({ref} run); the last two columns scaled to 100M landing rows "
            f"(× {per100m:,.0f}) at {PARTITION_BYTES // 1024 ** 2} MB per shuffle partition:", "",
            "| job | tasks | shuffle written (GiB) | largest stage (GiB) | shuffle read (GiB) | spill to disk (GiB) "
            "| executor peak JVM heap (GiB) | shuffle per 100M rows (GiB) | partitions for the largest stage per 100M rows |",
            "|---|" + "---:|" * 8]
    for job in JOBS:
        m = runs[ref]["metrics"][job]
        parts = math.ceil(m["max_stage_shuffle"] * per100m / PARTITION_BYTES)
        out.append(f"| {job} | {m['tasks']:.0f} | {_gb(m['shuffle_write'])} | {_gb(m['max_stage_shuffle'])} | "
                   f"{_gb(m['shuffle_read'])} | {_gb(m['spill_disk'])} | {_gb(m['peak_heap'])} | "
                   f"{_gb(m['shuffle_write'] * per100m)} | {parts:,} |")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write(text)
    workers = [n for n in names if n.startswith("workers=")]
    if len(workers) >= 2:
        a, b = runs[workers[0]]["wall"], runs[workers[-1]]["wall"]
        shown = f"{workers[0]}: {a:.0f} s; {workers[-1]}: {b:.0f} s ({a / b:.2f}x faster)"
        peer = f"local[2] {runs['local[2]']['wall']:.0f} s" if "local[2]" in runs else "—"
        bench_summary.record_into(args.results, "cluster", f"pipeline (ingest to value) on a standalone cluster, "
                                  f"scale {args.scale:g}", shown, peer, "—", "report both", heading)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="8g")
    parser.add_argument("--executor-memory", default="6g")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--local-driver-memory", default="10g", help="local[2]: driver and executor in one JVM")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--local", action="store_true", help="also run on local[2] in one JVM")
    parser.add_argument("--workdir", default=str(HERE / "out" / "cluster"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "lib"))
    from memberlake.settings import load_settings

    args.delta = load_settings("cluster").spark.delta_package
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(work), "SPARK_WORKER_DIR": str(work / "work"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "MEMBERLAKE_PII_KEY": "bench-cluster-key"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"),
                    str(ROOT)], check=True)
    (wheel,) = (work / "dist").glob("memberlake-*.whl")
    landing = work / "landing"
    subprocess.run([sys.executable, "-m", "memberlake.cli", "generate", "--scale", str(args.scale), "--seed",
                    str(args.seed), "--out", str(landing)], check=True, env=env, capture_output=True)
    runs: dict[str, dict] = {}
    for n in args.workers:
        with standalone(n, args.worker_cores, args.worker_memory, work, env) as url:
            runs[f"workers={n}"] = one_run(f"workers={n}", url, args, wheel, landing, work, env)
    if args.local:
        runs["local[2]"] = one_run("local[2]", "local[2]", args, wheel, landing, work, env)
    write_results(args, runs, max(r["rows"] for r in runs.values()))


if __name__ == "__main__":
    main()
