"""A class-data-sharing archive for the driver JVM a job starts (HotSpot's AppCDS).

A job started alone (``memberlake <job>``, a cron or scheduler task) spends seconds loading and
verifying the same classes of Spark, Delta and their dependencies every time. HotSpot can
map them from an archive instead. The first process that starts its JVM without one records what
it loads (``-XX:+RecordDynamicDumpInfo``, which slows that JVM's start by about 8 s) and, once its
command has succeeded, asks the JVM to write the archive (``jcmd <pid> VM.cds dynamic_dump``,
about 10 s, once); later processes start with ``-XX:SharedArchiveFile`` (0-6 s less per start
here, median 3.5 s; ``bench/job_start.py``).

The archive is written under a temporary name and renamed into place, so no process maps a
half-written file, and a JVM that fails to start with an archive is started again without it
(the archive is deleted): a damaged file costs one retry, never a failed job. The file name
carries a digest of the Java build, PySpark and the jars, so an upgrade makes a new archive
instead of one the JVM would refuse. A process records only when it could write the archive
afterwards (``jcmd`` present, a writable cache folder, no failed dump in the last week): recording
without an archive to show for it would only slow every start. Nothing happens when the JVM is
already up (spark-submit, Databricks), or with ``spark.class_sharing: false``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

CACHE_ENV = "MEMBERLAKE_CACHE_DIR"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
KEEP = 3             # archives kept in the cache folder (one per Java/Spark/jars combination)
DUMP_TIMEOUT = 300   # seconds jcmd may take to write the archive
RETRY_AFTER = 7 * 24 * 3600   # seconds before a failed dump is tried again


def cache_dir() -> Path:
    """``$MEMBERLAKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/memberlake``, else ``~/.cache/memberlake``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memberlake"


def archive_path(java_banner: str, java_binary: str, conf: dict[str, str], folder: Path | None = None) -> Path:
    """Where the archive for this Java build, PySpark and class path lives.

    The JVM refuses an archive made with other jars or another Java build; keying the name on them
    keeps one usable archive per combination instead of one that keeps being refused."""
    import pyspark

    parts = [java_banner.strip(), os.path.realpath(java_binary), pyspark.__version__,
             *(f"{k}={conf.get(k, '')}" for k in ("spark.jars.packages", "spark.jars", "spark.driver.extraClassPath"))]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return (folder or cache_dir()) / f"jvm-classes-{digest}.jsa"


def java_options(use: Path | None, existing: str = "", crash_folder: str | None = None) -> str:
    """The driver's Java options: map the archive ``use``, or (None) record for making one.

    ``IgnoreUnrecognizedVMOptions`` keeps a JVM that lacks these flags starting as before. A JVM
    that dies mapping a damaged archive writes its crash report to ``crash_folder`` (the Spark log
    folder), not into the folder the job was started from: the job goes on without the archive."""
    if use is None:
        # The dump logs a warning per class it leaves out (thousands): not worth a log line each.
        ours = "-XX:+RecordDynamicDumpInfo -Xlog:cds*=off"
    else:
        crash = f" -XX:ErrorFile={os.path.join(crash_folder, 'hs_err_pid%p.log')}" if crash_folder else ""
        ours = f"-XX:SharedArchiveFile={use}{crash}"
    return " ".join(part for part in (existing.strip(), "-XX:+IgnoreUnrecognizedVMOptions", ours) if part)


def usable(archive: Path) -> bool:
    """True when ``archive`` exists, or this process can make it: recording slows the JVM's own
    start by several seconds (8 s here), so a process that could not write the archive afterwards
    (no ``jcmd``, a cache folder it cannot write, a dump that failed lately) does not record."""
    if archive.is_file():
        return True
    failed = _failed_marker(archive)
    if failed.is_file() and time.time() - failed.stat().st_mtime < RETRY_AFTER:
        return False
    if _jcmd() is None:
        return False
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(archive.parent, os.W_OK)


def _failed_marker(archive: Path) -> Path:
    return archive.with_name(archive.name + ".failed")


@dataclass
class Pending:
    """A JVM started to record its classes: the archive to write once the command has succeeded."""

    archive: Path
    jvm_pid: int


_PENDING: list[Pending] = []


def record(archive: Path, jvm_pid: int | None) -> None:
    """Remember that this process's JVM records its classes for ``archive``."""
    _PENDING.clear()
    if jvm_pid is not None and not archive.is_file():
        _PENDING.append(Pending(archive, jvm_pid))


def save_pending(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> Path | None:
    """Write the archive this process's JVM recorded, if any; returns its path when written.

    Called when a command has succeeded. Any failure is logged and ignored: the archive only
    saves time."""
    if not _PENDING:
        return None
    pending = _PENDING.pop()
    if pending.archive.is_file():   # another process made it meanwhile
        return None
    jcmd = _jcmd()
    if jcmd is None:
        log.debug("no jcmd next to java: no class archive is made")
        return None
    pending.archive.parent.mkdir(parents=True, exist_ok=True)
    partial = pending.archive.with_name(f"{pending.archive.stem}.{os.getpid()}.partial")
    started = time.monotonic()
    try:
        done = run([jcmd, str(pending.jvm_pid), "VM.cds", "dynamic_dump", str(partial)],
                   capture_output=True, text=True, timeout=DUMP_TIMEOUT)
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            return _failed(pending.archive, f"jcmd exited {done.returncode}: {done.stdout[-300:]}")
        os.replace(partial, pending.archive)
        _failed_marker(pending.archive).unlink(missing_ok=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return _failed(pending.archive, str(exc))
    finally:
        partial.unlink(missing_ok=True)
    log.info("saved the JVM's class archive in %.1f s, once (later jobs start faster): %s",
             time.monotonic() - started, pending.archive)
    _prune(pending.archive.parent)
    return pending.archive


def _failed(archive: Path, reason: str) -> None:
    """Say why no archive was made, and keep later processes from recording for it for a while."""
    log.info("no JVM class archive was made (%s); jobs start as before, and it is tried again in %d days",
             reason.strip().splitlines()[-1] if reason.strip() else "no reason given", RETRY_AFTER // 86400)
    try:
        _failed_marker(archive).write_text(reason)
    except OSError:
        pass
    return None


def _jcmd() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "jcmd")):
        return os.path.join(java_home, "bin", "jcmd")
    java = shutil.which("java")
    beside = os.path.join(os.path.dirname(os.path.realpath(java)), "jcmd") if java else None
    return beside if beside and os.path.exists(beside) else shutil.which("jcmd")


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` newest archives (each is 100-200 MB); older Java/Spark versions' go."""
    archives = sorted(folder.glob("jvm-classes-*.jsa"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[KEEP:]:
        old.unlink(missing_ok=True)
