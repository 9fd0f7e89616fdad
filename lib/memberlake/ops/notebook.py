"""What every notebook in notebooks/ starts with: the session and the lakehouse to explore.

On Databricks the active session is used and ``MEMBERLAKE_LAKEHOUSE`` (or the notebook's own
value) is ``catalog.schema``; locally it is a folder (``data/lakehouse`` after ``make demo``) and
a local session is started.
"""
from __future__ import annotations

import os

from pyspark.sql import SparkSession

from memberlake.io.delta import Lakehouse


def lakehouse_from(location: str) -> Lakehouse:
    """``catalog.schema`` (no slash) names catalog tables; anything else is a folder or URI."""
    if "/" not in location and location.count(".") == 1:
        catalog, schema = location.split(".")
        return Lakehouse(None, catalog, schema)
    from memberlake.io.delta import absolute

    return Lakehouse(absolute(location.rstrip("/")))


def open_lakehouse(default: str = "data/lakehouse") -> tuple[SparkSession, Lakehouse]:
    spark = SparkSession.getActiveSession()
    if spark is None:
        from memberlake.settings import load_settings
        from memberlake.spark import get_spark

        spark = get_spark(load_settings("local"))
    return spark, lakehouse_from(os.environ.get("MEMBERLAKE_LAKEHOUSE", default))
