"""dq_metrics profile: hand-computed completeness, uniqueness and validity."""
from __future__ import annotations

from memberlake.ops.quality import profile


def test_profile_counts(spark):
    df = spark.createDataFrame(
        [("a", "x", []), ("a", None, ["email_invalid"]), ("b", None, ["email_invalid", "phone_invalid"]), (None, "y", [])],
        "id string, v string, _flags array<string>")
    metrics = {(m, c): v for _, m, c, v in profile(df, "t", ["id"], ["id", "v"])}
    assert metrics[("rows", None)] == 4
    assert metrics[("completeness", "id")] == 0.75
    assert metrics[("completeness", "v")] == 0.5
    assert metrics[("key_uniqueness", "id")] == 0.75         # distinct keys (a, b, null) over 4 rows
    assert metrics[("validity", None)] == 0.5
    assert metrics[("flagged_rows", "email_invalid")] == 2
    assert metrics[("flagged_rows", "phone_invalid")] == 1


def test_profile_of_empty_table(spark):
    df = spark.createDataFrame([], "id string")
    metrics = {(m, c): v for _, m, c, v in profile(df, "t", ["id"], ["id"])}
    assert metrics == {("rows", None): 0, ("completeness", "id"): 1.0, ("key_uniqueness", "id"): 1.0}
