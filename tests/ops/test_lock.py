"""One writer per lakehouse: a second job stops at once naming the first; a dead holder's lock is
taken over (issue 25: two jobs writing at once ended as whatever Delta's conflict said)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from memberlake import cli
from memberlake.io.lock import LOCK_NAME, LakehouseBusy, writer_lock

HOLD = """
import sys, time
from memberlake.io.lock import writer_lock
with writer_lock(None, sys.argv[1], "identity", "run-A"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lakehouse's lock, as a running job would."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_first(spark, tmp_path, holder):
    with pytest.raises(LakehouseBusy, match=r"being written by job identity run run-A \(pid \d+"):
        with writer_lock(spark, str(tmp_path), "value", "run-B"):
            pass
    assert json.loads((tmp_path / LOCK_NAME).read_text())["run_id"] == "run-A"   # left alone


def test_a_job_started_meanwhile_exits_2_with_one_line_and_writes_nothing(spark, tmp_path, holder, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(["maintain", "--lakehouse", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "being written by job identity run run-A" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before          # not even a job_runs row


def test_the_lock_of_a_killed_job_is_taken_over(spark, tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with writer_lock(spark, str(tmp_path), "value", "run-B"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["run_id"] == "run-B"
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_one_process_and_released_on_error(spark, tmp_path):
    with pytest.raises(RuntimeError):
        with writer_lock(spark, str(tmp_path), "pipeline", "r1"):
            with writer_lock(spark, str(tmp_path), "value", "r2"):
                assert (tmp_path / LOCK_NAME).exists()
            raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_processes_racing_one_wins(tmp_path):
    race = """
import sys, time
from memberlake.io.lock import writer_lock, LakehouseBusy
time.sleep(float(sys.argv[2]) - time.time())
try:
    with writer_lock(None, sys.argv[1], "job", sys.argv[3]):
        time.sleep(2)
    print("won")
except LakehouseBusy:
    print("busy")
"""
    start = time.time() + 3
    procs = [subprocess.Popen([sys.executable, "-c", race, str(tmp_path), str(start), f"r{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["busy", "busy", "busy", "won"]
