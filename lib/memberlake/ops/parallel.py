"""Independent Spark work of one job run side by side: entities in ingest and clean, tables in
publish.

Each piece is a chain of short Spark jobs and Delta commits, each with a fixed latency
(scheduling, planning, the Delta log, the commit); with a second piece in flight, one's waits
overlap the other's work, and at scale the scheduler shares the task slots between them. The
price is memory: two pieces' cached rows at once. ``spark.concurrent_jobs`` sets how many run at
once (1: one after another); docs/operations.md has the figures.
"""
from __future__ import annotations

import logging
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Sequence, TypeVar

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def run_each(spark: SparkSession, items: Sequence[T], work: Callable[[T], R], workers: int) -> list[R]:
    """``work(item)`` for every item, ``workers`` at a time; the results in ``items``' order.

    Each thread makes ``spark`` its active session. The first failure stops the items not yet
    started and is raised once the running ones have ended (a job's writes are published only
    when its run succeeds, so a failed item leaves nothing half visible).
    """
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    jvm_session = spark._jsparkSession

    def activate() -> None:
        spark.sparkContext._jvm.org.apache.spark.sql.SparkSession.setActiveSession(jvm_session)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="memberlake-work", initializer=activate) as pool:
        futures = [pool.submit(work, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            stopped = sum(f.cancel() for f in futures)
            wait(futures)
            log.info("an item failed: %d of %d items were not started; raising the first failure", stopped, len(items))
            raise failed.exception()
        return [f.result() for f in futures]
