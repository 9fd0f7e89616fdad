"""Independent work of one job side by side (``spark.concurrent_jobs``): order, failures, the
session in each thread, and writes to one shared table taking turns."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from pyspark.sql import SparkSession

from memberlake.io.delta import Lakehouse
from memberlake.ops.parallel import run_each
from memberlake.ops.runs import Run


def test_results_keep_the_items_order_and_two_items_run_at_once(spark):
    both_started = threading.Barrier(2, timeout=20)

    def work(i: int) -> int:
        if i < 2:
            both_started.wait()   # raises BrokenBarrierError unless items 0 and 1 overlap
        time.sleep(0.01 * (5 - i))   # later items end first
        return i * 10

    assert run_each(spark, list(range(5)), work, workers=2) == [0, 10, 20, 30, 40]


def test_one_worker_runs_the_items_one_after_another_in_the_calling_thread(spark):
    threads = []
    assert run_each(spark, ["a", "b"], lambda x: threads.append(threading.current_thread()) or x.upper(), 1) == ["A", "B"]
    assert threads == [threading.main_thread(), threading.main_thread()]


def test_a_failure_is_raised_after_the_running_items_end_and_stops_the_rest(spark):
    started, ended = [], []

    def work(i: int) -> int:
        started.append(i)
        try:
            if i == 1:
                raise ValueError("item 1 is bad")
            time.sleep(0.2)
            return i
        finally:
            ended.append(i)

    with pytest.raises(ValueError, match="item 1 is bad"):
        run_each(spark, list(range(30)), work, workers=2)
    assert sorted(ended) == sorted(started)    # nothing still running when the error surfaces
    assert 1 in started and len(started) < 30   # the items not yet started were dropped


def test_each_thread_has_the_session_active_and_runs_spark_jobs(spark):
    def work(n: int) -> int:
        active = SparkSession.getActiveSession()
        assert active is not None
        return active.range(n).count()

    assert run_each(spark, [3, 4, 5], work, workers=2) == [3, 4, 5]


def test_slices_of_one_table_written_from_threads_take_turns_and_all_land(spark, tmp_path):
    """Two replaceWhere transactions on one unpartitioned Delta table conflict when they overlap;
    the lakehouse's per-table lock makes them take turns (the clean job's quarantine writes)."""
    lake = Lakehouse(str(tmp_path / "lake"), session=spark)
    lake.overwrite(spark.createDataFrame([(k, 0) for k in range(4)], "k int, v int"), "shared")

    def write(k: int) -> int:
        rows = spark.createDataFrame([(k, k * 100), (k, k * 100 + 1)], "k int, v int")
        lake.replace_where(rows, "shared", f"k = {k}")
        return k

    run_each(spark, list(range(4)), write, workers=2)
    got = sorted((r.k, r.v) for r in lake.read("shared").collect())
    assert got == sorted((k, v) for k in range(4) for v in (k * 100, k * 100 + 1))
    assert lake.version("shared") == 4   # one commit per slice, none lost or retried twice


def test_a_run_records_rows_from_threads_and_keeps_the_newest_version():
    run = Run("clean", "r1", {}, datetime.now(timezone.utc))
    run.record_write("quarantine", 2, 7)
    run.record_write("quarantine", 3, 5)    # a thread that wrote earlier records later
    assert run.rows_written["quarantine"] == 5 and run.versions_written["quarantine"] == 7

    def record() -> None:
        for _ in range(1000):
            run.record_write("silver", 1, 1)

    workers = [threading.Thread(target=record) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert run.rows_written["silver"] == 4000
