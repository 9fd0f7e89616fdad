"""The console shows memberlake's own lines: Spark's and Ivy's output goes to a log file that the
session names (issue 24), and a missing input still gets its one line."""
from __future__ import annotations

import os
import re
import subprocess
import sys


def test_a_job_prints_no_spark_or_ivy_output_and_names_its_log(tmp_path):
    env = {**os.environ, "MEMBERLAKE_LOG_DIR": str(tmp_path / "logs"), "PYSPARK_SUBMIT_ARGS": "pyspark-shell"}
    env.pop("MEMBERLAKE_REQUIRE_BROWSER", None)
    result = subprocess.run([sys.executable, "-m", "memberlake.cli", "tables", "--lakehouse", str(tmp_path / "lake")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    console = result.stdout + result.stderr
    for noise in (":: resolution report", "loading settings", " WARN ", "log4j", "NativeCodeLoader"):
        assert noise not in console, noise
    logged = re.search(r"Spark's own log: (\S+)", result.stderr)
    assert logged and logged.group(1).startswith(str(tmp_path / "logs"))
    assert "io.delta#delta-spark" in open(logged.group(1), encoding="utf-8").read()   # Ivy's report, kept
    assert "no runs recorded" not in console and "(0 tables under" in result.stdout


def test_the_command_line_loads_no_chart_or_statistics_library_before_a_job_needs_it():
    """Every job's start imports the command line, which imports every job module to build its
    parser (issue 24: a job started alone pays what the project adds on top of the JVM). Charts
    and scipy.stats are imported where they are used, not at start."""
    probe = ("import sys, memberlake.cli, memberlake.plotting; "
             "print(sorted(m for m in ('matplotlib', 'matplotlib.pyplot', 'scipy.stats') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
    from memberlake.plotting import plt, pyplot  # and the stand-in gives pyplot on first use, headless

    assert plt.subplots is pyplot().subplots and pyplot().get_backend().lower() == "agg"
