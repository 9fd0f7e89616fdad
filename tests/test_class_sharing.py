"""The JVM class archive a job's start maps (issue 24: a job started alone pays JVM start-up on
every run): named per Java build and jars, written once under a temporary name and renamed, and
never the reason a job fails."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memberlake import class_sharing
from memberlake import spark as spark_module

BANNER = 'openjdk version "17.0.15" 2025-04-15\nOpenJDK 64-Bit Server VM (build 17.0.15+6, mixed mode, sharing)'
CONF = {"spark.jars.packages": "io.delta:delta-spark_2.13:4.0.1"}


@pytest.fixture(autouse=True)
def _nothing_pending():
    class_sharing._PENDING.clear()
    yield
    class_sharing._PENDING.clear()


def test_the_archive_is_named_for_the_java_build_and_the_jars(tmp_path, monkeypatch):
    monkeypatch.setenv(class_sharing.CACHE_ENV, str(tmp_path))
    one = class_sharing.archive_path(BANNER, "/usr/bin/java", CONF)
    assert one.parent == tmp_path and re.fullmatch(r"jvm-classes-[0-9a-f]{16}\.jsa", one.name)
    assert class_sharing.archive_path(BANNER, "/usr/bin/java", dict(CONF)) == one
    others = {class_sharing.archive_path(BANNER.replace("17.0.15+6", "17.0.16+8"), "/usr/bin/java", CONF),
              class_sharing.archive_path(BANNER, "/usr/bin/java", {"spark.jars.packages": "io.delta:delta-spark_2.13:4.0.0"}),
              class_sharing.archive_path(BANNER, "/usr/bin/java", {**CONF, "spark.jars": "/opt/extra.jar"})}
    assert one not in others and len(others) == 3


def test_the_cache_folder_defaults_to_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(class_sharing.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert class_sharing.cache_dir() == tmp_path / "memberlake"


def test_java_options_record_without_an_archive_and_map_one_that_exists(tmp_path):
    archive = tmp_path / "a.jsa"
    recording = class_sharing.java_options(None, "-Dfoo=1")
    assert recording.startswith("-Dfoo=1 -XX:+IgnoreUnrecognizedVMOptions")
    assert "-XX:+RecordDynamicDumpInfo" in recording and "SharedArchiveFile" not in recording
    mapping = class_sharing.java_options(archive)
    assert mapping == f"-XX:+IgnoreUnrecognizedVMOptions -XX:SharedArchiveFile={archive}"
    logs = str(tmp_path / "logs")
    assert class_sharing.java_options(archive, "", logs).endswith(f"-XX:ErrorFile={logs}/hs_err_pid%p.log")


def _jcmd(writes: bytes | None, code: int = 0):
    """A stand-in for ``jcmd <pid> VM.cds dynamic_dump <file>`` that writes ``writes`` there."""
    calls = []

    def run(cmd, **_):
        calls.append(cmd)
        assert cmd[2:4] == ["VM.cds", "dynamic_dump"]
        if writes is not None:
            Path(cmd[4]).write_bytes(writes)
        return subprocess.CompletedProcess(cmd, code, stdout="", stderr="")
    return run, calls


def test_a_recorded_archive_is_written_aside_then_renamed_into_place(tmp_path, monkeypatch):
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: "/jdk/bin/jcmd")
    archive = tmp_path / "cache" / "jvm-classes-x.jsa"
    archive.parent.mkdir()
    (archive.parent / "jvm-classes-x.jsa.failed").write_text("an old failure")   # cleared by a success
    class_sharing.record(archive, 4242)
    run, calls = _jcmd(b"archive bytes")
    assert class_sharing.save_pending(run) == archive
    assert calls[0][:2] == ["/jdk/bin/jcmd", "4242"] and calls[0][4] != str(archive)   # never the final name
    assert archive.read_bytes() == b"archive bytes"
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]                 # no partial file left
    assert class_sharing.save_pending(run) is None and len(calls) == 1                  # once per process


@pytest.mark.parametrize("writes,code", [(None, 0), (b"", 0), (b"half", 1)], ids=["nothing", "empty", "failed"])
def test_a_dump_that_fails_leaves_no_archive_and_no_partial_file(tmp_path, monkeypatch, writes, code):
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: "/jdk/bin/jcmd")
    archive = tmp_path / "jvm-classes-x.jsa"
    class_sharing.record(archive, 4242)
    run, _ = _jcmd(writes, code)
    assert class_sharing.save_pending(run) is None
    assert [p.name for p in tmp_path.iterdir()] == ["jvm-classes-x.jsa.failed"]
    # recording slows the JVM's start: after a failed dump, processes do not record for a week
    assert not class_sharing.usable(archive)
    week_ago = os.stat(tmp_path / "jvm-classes-x.jsa.failed").st_mtime - class_sharing.RETRY_AFTER - 1
    os.utime(tmp_path / "jvm-classes-x.jsa.failed", (week_ago, week_ago))
    assert class_sharing.usable(archive)


def test_a_process_records_only_when_it_could_write_the_archive(tmp_path, monkeypatch):
    archive = tmp_path / "cache" / "jvm-classes-x.jsa"
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: None)          # a JRE without the JDK's tools
    assert not class_sharing.usable(archive)
    archive.parent.mkdir()
    archive.write_bytes(b"made elsewhere")
    assert class_sharing.usable(archive)                               # mapping one needs no jcmd
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: "/jdk/bin/jcmd")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert not class_sharing.usable(blocked / "jvm-classes-x.jsa")    # a cache folder it cannot make
    assert class_sharing.usable(tmp_path / "new" / "jvm-classes-y.jsa")


def test_no_dump_when_an_archive_exists_no_jvm_pid_or_no_jcmd(tmp_path, monkeypatch):
    run, calls = _jcmd(b"x")
    existing = tmp_path / "jvm-classes-a.jsa"
    existing.write_bytes(b"made by another process")
    class_sharing.record(existing, 1)
    assert class_sharing.save_pending(run) is None
    class_sharing.record(tmp_path / "jvm-classes-b.jsa", None)
    assert class_sharing.save_pending(run) is None
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: None)
    class_sharing.record(tmp_path / "jvm-classes-c.jsa", 7)
    assert class_sharing.save_pending(run) is None
    assert calls == [] and existing.read_bytes() == b"made by another process"


def test_only_the_newest_archives_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(class_sharing, "_jcmd", lambda: "/jdk/bin/jcmd")
    for age in range(4):
        old = tmp_path / f"jvm-classes-old{age}.jsa"
        old.write_bytes(b"o")
        os.utime(old, (1_000_000 + age, 1_000_000 + age))
    (tmp_path / "unrelated.txt").write_text("kept")
    class_sharing.record(tmp_path / "jvm-classes-new.jsa", 9)
    class_sharing.save_pending(_jcmd(b"n")[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "jvm-classes-new.jsa", "jvm-classes-old2.jsa", "jvm-classes-old3.jsa", "unrelated.txt"]


class _Builder:
    """A SparkSession builder whose JVM refuses to start with a class archive."""

    def __init__(self):
        self.options: dict[str, str] = {}
        self.starts: list[dict[str, str]] = []

    def config(self, key, value):
        self.options[key] = value
        return self

    def getOrCreate(self):
        self.starts.append(dict(self.options))
        if "SharedArchiveFile" in self.options.get(class_sharing.JAVA_OPTIONS, ""):
            raise RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")
        return "session"


def test_a_jvm_that_does_not_start_with_its_archive_starts_without_it(tmp_path):
    archive = tmp_path / "jvm-classes-x.jsa"
    archive.write_bytes(b"damaged")
    builder = _Builder()
    conf = {"spark.jars.packages": "p", class_sharing.JAVA_OPTIONS: "-Duser=1"}
    assert spark_module._start(builder, conf, archive) == ("session", True)
    assert len(builder.starts) == 2
    assert builder.starts[1][class_sharing.JAVA_OPTIONS] == "-Duser=1"   # the user's options, nothing of ours
    assert not archive.exists()
    assert class_sharing._PENDING == []                                   # the retry does not record


def test_a_failure_to_start_while_recording_is_the_jobs_own_error(tmp_path):
    class Failing(_Builder):
        def getOrCreate(self):
            raise RuntimeError("bad memory setting")

    builder = Failing()
    with pytest.raises(RuntimeError, match="bad memory setting"):
        spark_module._start(builder, {}, tmp_path / "jvm-classes-x.jsa")
    assert "RecordDynamicDumpInfo" in builder.options[class_sharing.JAVA_OPTIONS]


@pytest.mark.extended   # three fresh JVMs (~40 s)
@pytest.mark.skipif(class_sharing._jcmd() is None, reason="no jcmd beside java (a JRE): no archive is made")
def test_jobs_started_alone_make_map_and_survive_a_damaged_archive(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, class_sharing.CACHE_ENV: str(cache), "MEMBERLAKE_LOG_DIR": str(tmp_path / "logs"),
           "PYSPARK_SUBMIT_ARGS": "pyspark-shell"}

    def tables():
        done = subprocess.run([sys.executable, "-m", "memberlake.cli", "tables", "--lakehouse", str(tmp_path / "lake")],
                              capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        log = re.search(r"Spark's own log: (\S+)", done.stderr).group(1)
        return done.stdout + done.stderr, open(log, encoding="utf-8", errors="replace").read()

    console, _ = tables()
    archives = list(cache.glob("jvm-classes-*.jsa"))
    assert len(archives) == 1 and archives[0].stat().st_size > 10_000_000, console
    assert "saved the JVM's class archive" in console and "[warning]" not in console
    assert sorted(p.name for p in cache.iterdir()) == [archives[0].name]

    console, jvm_log = tables()                  # maps it: the JVM says nothing about refusing it
    assert "saved the JVM's class archive" not in console and "[warning][cds" not in jvm_log

    damaged = tmp_path / "damaged.jsa"   # a new file renamed over it: a JVM may still map the old one
    damaged.write_bytes(archives[0].read_bytes()[: archives[0].stat().st_size // 3])
    os.replace(damaged, archives[0])
    console, _ = tables()                        # HotSpot dies mapping it; the job starts again without
    assert "did not start with its class archive" in console and "deleted it" in console
    assert not archives[0].exists()
    assert not list(tmp_path.glob("hs_err_pid*.log")) and list((tmp_path / "logs").glob("hs_err_pid*.log"))
