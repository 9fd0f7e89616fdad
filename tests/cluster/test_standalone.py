"""spark-submit to a real Spark standalone cluster: a master and two workers on loopback.

The pip pyspark ships ``spark-class`` with the Master and Worker classes. The wheel is built
from this checkout and shipped with ``--py-files``; Delta comes with ``--packages``, as on any
cluster. Run with ``pytest -m cluster`` (``.ci/run`` does).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import functions as F

from memberlake.cli import UPSTREAM
from memberlake.io.delta import Lakehouse
from memberlake.settings import load_settings

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
            return int(json.load(r).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(root), "SPARK_WORKER_DIR": str(root / "work")}
    port, ui = _port(), _port()
    master_url = f"spark://127.0.0.1:{port}"
    procs = [_start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                     "--webui-port", str(ui)], root / "master.log", env)]
    for i in range(2):
        procs.append(_start(["org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
                             "--cores", "1", "--memory", "2g", "--webui-port", str(_port()),
                             "--work-dir", str(root / f"work{i}")], root / f"worker{i}.log", env))
    try:
        deadline = time.monotonic() + 120
        while _alive_workers(ui) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                logs = "\n".join(p.read_text()[-2000:] for p in sorted(root.glob("*.log")))
                pytest.fail(f"standalone cluster did not come up:\n{logs}")
            time.sleep(1)
        yield master_url, root, env
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def test_pipeline_runs_on_a_standalone_cluster_with_spark_submit(spark, cluster):
    master_url, root, env = cluster
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(ROOT)],
                   check=True, cwd=root)
    (wheel,) = dist.glob("memberlake-*.whl")
    landing, lakehouse = root / "landing", root / "lake"
    subprocess.run([sys.executable, "-m", "memberlake.cli", "generate", "--scale", "0.0005", "--seed", "11",
                    "--out", str(landing)], check=True, env=env)
    delta = load_settings("cluster").spark.delta_package
    submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master_url, "--deploy-mode", "client",
              "--py-files", str(wheel), "--packages", delta,
              "--driver-java-options", f"-Dlog4j2.configurationFile=file:{ROOT / 'conf' / 'log4j2.properties'}",
              "--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1",
              "--conf", f"spark.pyspark.python={sys.executable}", "--conf", "spark.ui.enabled=false",
              str(ROOT / "jobs" / "pipeline.py"), "--env", "cluster", "--landing", str(landing),
              "--lakehouse", str(lakehouse), "--set", "spark.shuffle_partitions=4",
              # one churn candidate and a short k search: this test is about running on a cluster
              "--set", "models.churn.candidates={logistic_regression: {regParam: [0.01]}}",
              "--set", "models.segmentation.k_max=4"]
    run_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
               "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}", "MEMBERLAKE_PII_KEY": "cluster-test-key"}
    # spark-submit relays the Python driver's output on its stdout
    done = subprocess.run(submit, cwd=root, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:]
    assert f"master {master_url}" in done.stdout  # it really ran on the cluster, not local
    # conf/log4j2.properties: no Spark INFO line and none of the warnings the file names as
    # by-design reaches the console (a real warning, e.g. a task of very large size, still does)
    lines = done.stdout.splitlines()
    spark_info = [line for line in lines if " INFO " in line and "memberlake." not in line]
    by_design = ("NativeCodeLoader", "SparkStringUtils", "Utils:", "DAGScheduler", "WholeStageCodegenExec",
                 "MapPartitionsRDD", "InstanceBuilder")
    silenced = [line for line in lines if " WARN " in line and any(name in line for name in by_design)]
    assert spark_info == [] and silenced == [], (spark_info + silenced)[:20]
    lake = Lakehouse(str(lakehouse))
    runs = lake.read("job_runs").groupBy("job").agg(F.collect_set("status").alias("s")).collect()
    assert {r.job: r.s for r in runs} == {job: ["succeeded"] for job in UPSTREAM}
    for table in ("silver_members", "identity_graph", "person", "sessions", "rfm", "basket_rules", "features",
                  "churn_scores", "review_sentiment", "loyalty", "demand_forecast", "forecast_backtest"):
        assert lake.read(table).count() > 0, table
    assert (lakehouse / "_report" / "memberlake-report.html").stat().st_size > 10_000
