"""One writer per lakehouse: a lock file held while a job runs.

The run record is the commit point of a job's outputs (:mod:`memberlake.io.commits`), which
assumes one writer at a time: a second job writing meanwhile would see the first one's commits as
unpublished and roll them back, and what both leave depends on Delta's conflict checks. So a job
takes ``<lakehouse>/_memberlake.lock`` before it writes and removes it when it ends; a second
job finds it and stops at once with a message naming the holder. A lock whose holder is gone
(same host, process no longer alive: a killed driver) is taken over and logged.

The lock file is created atomically (``O_EXCL``) on local and mounted file systems, and with
Hadoop's ``create(overwrite=false)`` elsewhere, which is atomic on HDFS and ABFS but not on S3:
there, and in catalog mode (no lakehouse folder), let the scheduler run one pipeline at a time
(the Databricks bundle sets ``max_concurrent_runs: 1``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from pyspark.sql import SparkSession

from memberlake.errors import InputError

log = logging.getLogger(__name__)

LOCK_NAME = "_memberlake.lock"
_held: dict[str, int] = {}   # lock path -> depth, for this process (a pipeline's jobs nest nothing, forget may)


class LakehouseBusy(InputError):
    """Another job holds the lakehouse's writer lock."""


def _local_path(root: str) -> str | None:
    """The local folder of ``root`` (a path or a file: URI), or None for another file system."""
    if root.startswith("file:"):
        return "/" + root[len("file:"):].lstrip("/")
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", root) else root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Store:
    """Create-if-absent, read and delete of the lock file, on the local disk or through Hadoop."""

    def __init__(self, spark: SparkSession | None, root: str) -> None:
        self.local = _local_path(root)
        self.path = f"{(self.local or root).rstrip('/')}/{LOCK_NAME}"
        self.spark = spark

    def _hadoop(self):
        jvm = self.spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(self.path)
        return path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()), path

    def create(self, text: str) -> bool:
        if self.local is not None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return True
        fs, path = self._hadoop()
        try:
            stream = fs.create(path, False)
        except Exception as exc:  # noqa: BLE001 - FileAlreadyExistsException arrives as a Py4J error
            if "FileAlreadyExists" in str(exc) or fs.exists(path):
                return False
            raise
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        return True

    def read(self) -> str | None:
        if self.local is not None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        fs, path = self._hadoop()
        if not fs.exists(path):
            return None
        jvm = self.spark.sparkContext._jvm
        stream = fs.open(path)
        try:
            return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def delete(self) -> None:
        if self.local is not None:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            return
        fs, path = self._hadoop()
        fs.delete(path, False)


def _holder(text: str | None) -> dict:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}


def _describe(holder: dict) -> str:
    return (f"job {holder.get('job', '?')} run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, since {holder.get('since', '?')})")


@contextmanager
def writer_lock(spark: SparkSession | None, root: str | None, job: str, run_id: str) -> Iterator[None]:
    """Hold the lakehouse's writer lock for the body; :class:`LakehouseBusy` when another live job
    holds it. Re-entrant within one process. No-op without a lakehouse folder (catalog mode)."""
    if root is None:
        yield
        return
    store = _Store(spark, root)
    if _held.get(store.path):
        _held[store.path] += 1
        try:
            yield
        finally:
            _held[store.path] -= 1
        return
    me = {"job": job, "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
          "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):
        if store.create(json.dumps(me)):
            break
        holder = _holder(store.read())
        if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            log.warning("lakehouse lock %s was left by %s, which is no longer running: taken over",
                        store.path, _describe(holder))
            store.delete()
            continue
        if not holder:
            continue  # removed (or being written) between our create and read: try again
        raise LakehouseBusy(
            f"the lakehouse {root} is being written by {_describe(holder)}: wait for it to end (one writer "
            f"per lakehouse). If that job is gone for good, delete {store.path}")
    else:
        raise LakehouseBusy(f"could not take the lakehouse lock {store.path}: try again")
    _held[store.path] = 1
    try:
        yield
    finally:
        _held.pop(store.path, None)
        if _holder(store.read()).get("run_id") == run_id:
            store.delete()
