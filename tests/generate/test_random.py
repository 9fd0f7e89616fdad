"""The generator's draws and constant arrays."""
from __future__ import annotations

from pyspark.sql import functions as F

from memberlake.generate.random import Draws, constants


def test_constant_arrays_keep_every_value_and_type(spark):
    cases = {
        "strings": [".", "_", ""],          # the empty string last: split must keep a trailing empty field
        "one": ["only"],
        "separator": ["a\x1fb", "c"],       # holds the join character: one literal per value instead
        "unicode": ["质量", "Ünïcode, quoted \"text\"\nnewline"],
        "with null": ["x", None],
        "ints": [3, 1, 2],
    }
    row = spark.range(1).select(*[constants(v).alias(k) for k, v in cases.items()]).first()
    for name, values in cases.items():
        assert row[name] == values, name
    schema = spark.range(1).select(constants(["a", "b"]).alias("s"), constants([1, 2]).alias("i")).schema
    assert schema["s"].dataType.simpleString() == "array<string>"
    assert schema["i"].dataType.simpleString() == "array<int>"


def test_draws_are_the_same_for_the_same_seed_salt_and_keys_and_cover_the_range(spark):
    def draws(seed: int):
        r = Draws(seed)
        return (spark.range(2000).select(r.u("a", F.col("id")).alias("u"), r.u("b", F.col("id")).alias("v"),
                                         r.pick(["x", "y", "z"], "p", F.col("id")).alias("p"))
                .orderBy("u").collect())

    first, again, other = draws(5), draws(5), draws(6)
    assert first == again
    assert first != other
    us = [row["u"] for row in first]
    assert 0.0 <= min(us) < 0.01 and 0.99 < max(us) < 1.0
    assert sum(a["u"] == a["v"] for a in first) == 0           # another salt, another draw
    counts = {p: sum(row["p"] == p for row in first) for p in "xyz"}
    assert all(600 < n < 740 for n in counts.values()), counts
