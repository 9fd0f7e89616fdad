"""A live progress line while a job runs, on a terminal: elapsed time, the job's last stage line,
and the Spark stages running with their tasks done / total.

Spark's own console progress bar is off (it interleaves with log lines and has no job context);
this line is redrawn in place on stderr every ``interval`` seconds and cleared before each log
line. When stderr is not a terminal (CI, a scheduler's log), nothing is drawn: the job's stage
log lines are the progress.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def stage_summary(spark: SparkSession) -> str:
    """``stage 12: 3/8 tasks; stage 13: 0/2 tasks`` for the Spark stages running now."""
    tracker = spark.sparkContext.statusTracker()
    parts = []
    for stage_id in sorted(tracker.getActiveStageIds()):
        info = tracker.getStageInfo(stage_id)
        if info is not None:
            parts.append(f"stage {stage_id}: {info.numCompletedTasks}/{info.numTasks} tasks")
    return "; ".join(parts)


class _Line:
    """The redrawable line, and a logging handler wrapper that clears it before each record."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.width, self.lock = stream, 0, threading.Lock()

    def draw(self, text: str) -> None:
        with self.lock:
            text = text[:160]
            self.stream.write("\r" + text.ljust(self.width) + "\r")
            self.stream.flush()
            self.width = len(text)

    def clear(self) -> None:
        with self.lock:
            if self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
                self.width = 0


class _ClearFirst(logging.Filter):
    def __init__(self, line: _Line) -> None:
        super().__init__()
        self.line = line

    def filter(self, record: logging.LogRecord) -> bool:
        self.line.clear()
        return True


@contextmanager
def live_progress(spark: SparkSession, job: str, last_stage: list[str], interval: float = 1.0,
                  stream: TextIO | None = None, force: bool = False) -> Iterator[None]:
    """Draw ``[job 12.3s] <last stage line> | stage 4: 3/8 tasks`` while the body runs, when
    ``stream`` (stderr) is a terminal or ``force`` is given."""
    stream = stream or sys.stderr
    if not (force or (hasattr(stream, "isatty") and stream.isatty())):
        yield
        return
    line, done, t0 = _Line(stream), threading.Event(), time.monotonic()
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is stream]
    guard = _ClearFirst(line)
    for handler in handlers:
        handler.addFilter(guard)

    def loop() -> None:
        while not done.wait(interval):
            try:
                stages = stage_summary(spark)
            except Exception:  # noqa: BLE001 - the session is stopping; the line is decoration
                stages = ""
            text = f"[{job} {time.monotonic() - t0:6.1f}s] {last_stage[0] if last_stage else ''}"
            line.draw(text + (f" | {stages}" if stages else ""))

    thread = threading.Thread(target=loop, name=f"memberlake-progress-{job}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
        line.clear()
        for handler in handlers:
            handler.removeFilter(guard)
