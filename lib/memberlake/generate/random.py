"""Counter-based randomness for the generator: every draw is a hash of (seed, salt, keys).

Unlike ``rand(seed)``, a draw does not depend on how rows are partitioned, so the same seed
gives the same data on 1 core or 200, and any attribute of a person can be recomputed anywhere
from the person's index without a join.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

_SPACE = 1 << 53
_SEP = "\x1f"


def constants(values: Sequence) -> Column:
    """An array column of ``values``.

    Building the generator's plan is thousands of column functions, each a few py4j round trips
    (35k of them, ~8 s, at any scale), so strings go over as one literal that the JVM splits (and
    the optimizer folds back into an array literal); other values as one literal each."""
    if values and all(isinstance(v, str) and _SEP not in v for v in values):
        return F.split(F.lit(_SEP.join(values)), _SEP)
    return F.array(*[F.lit(v) for v in values])


class Draws:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    @cached_property
    def _literals(self) -> tuple[Column, Column]:
        """The seed and 2^53 as columns, built once (on first use: a Column needs a running session)."""
        return F.lit(self.seed), F.lit(_SPACE)

    def u(self, salt: str, *keys: Column) -> Column:
        """Uniform double in [0, 1)."""
        seed, space = self._literals
        h = F.xxhash64(seed, F.lit(salt), *keys)
        return F.pmod(h, space).cast("double") / float(_SPACE)

    def below(self, p: float, salt: str, *keys: Column) -> Column:
        """True with probability ``p``."""
        return self.u(salt, *keys) < p

    def int_below(self, n: Column | int, salt: str, *keys: Column) -> Column:
        """Uniform integer in [0, n)."""
        return F.floor(self.u(salt, *keys) * n).cast("long")

    def pick(self, values: Sequence, salt: str, *keys: Column, skew: float = 1.0) -> Column:
        """One of ``values``; ``skew`` > 1 favours the first ones (a Zipf-like head)."""
        u = self.u(salt, *keys)
        if skew != 1.0:
            u = F.pow(u, skew)
        index = (F.floor(u * len(values)) + 1).cast("int")
        return F.element_at(constants(values), index)

    def weighted(self, values: Sequence, weights: Sequence[float], salt: str, *keys: Column) -> Column:
        """One of ``values`` with the given relative weights."""
        u = self.u(salt, *keys)
        total = float(sum(weights))
        expr, cumulative = None, 0.0
        for value, weight in zip(values, weights, strict=True):
            cumulative += weight / total
            expr = (F.when(u < cumulative, F.lit(value)) if expr is None
                    else expr.when(u < cumulative, F.lit(value)))
        return expr.otherwise(F.lit(values[-1]))

    def normal(self, salt: str, *keys: Column) -> Column:
        """Standard normal by Box-Muller."""
        u1 = F.greatest(self.u(salt + ":1", *keys), F.lit(1e-12))
        u2 = self.u(salt + ":2", *keys)
        return F.sqrt(-2.0 * F.log(u1)) * F.cos(2.0 * math.pi * u2)

    def exponential(self, mean: float, salt: str, *keys: Column) -> Column:
        return -F.log(F.lit(1.0) - self.u(salt, *keys)) * mean

    def hex_id(self, prefix: str, salt: str, *keys: Column, length: int = 16) -> Column:
        """A stable opaque id, e.g. a cookie: prefix + hex digest of (seed, salt, keys)."""
        digest = F.sha2(F.concat_ws("|", F.lit(str(self.seed)), F.lit(salt), *[k.cast("string") for k in keys]), 256)
        return F.concat(F.lit(prefix), F.substring(digest, 1, length))
