"""The live progress line: drawn on a terminal with the Spark stages' tasks, never elsewhere."""
from __future__ import annotations

import io
import time

from memberlake.ops.progress import live_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_shows_the_job_its_stage_and_running_tasks_then_clears(spark):
    out = _Terminal()
    with live_progress(spark, "value", ["RFM: 12 persons"], interval=0.2, stream=out):
        spark.range(0, 4, numPartitions=4).rdd.map(lambda x: time.sleep(1.5) or x).count()
    text = out.getvalue()
    assert "[value" in text and "RFM: 12 persons" in text
    assert " tasks" in text and "stage " in text            # a Spark stage's tasks done / total
    assert text.endswith("\r")                               # cleared at the end


def test_nothing_is_drawn_when_the_console_is_no_terminal(spark):
    out = io.StringIO()
    with live_progress(spark, "value", ["x"], interval=0.05, stream=out):
        time.sleep(0.3)
    assert out.getvalue() == ""
