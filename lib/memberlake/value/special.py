"""log-gamma and digamma as Spark column expressions (Spark SQL has neither).

Both shift the argument by 6 with the recurrence and then use the asymptotic (Stirling) series,
which at w >= 6 is accurate to about 1e-12: enough for maximum-likelihood fits, and it keeps the
likelihood in the JVM instead of a Python UDF.
"""
from __future__ import annotations

import math

from pyspark.sql import Column
from pyspark.sql import functions as F

_HALF_LN_2PI = 0.5 * math.log(2 * math.pi)


def lgamma(z: Column) -> Column:
    """ln Gamma(z) for z > 0."""
    w = z + 6
    series = ((w - 0.5) * F.log(w) - w + _HALF_LN_2PI + 1 / (12 * w) - 1 / (360 * F.pow(w, 3))
              + 1 / (1260 * F.pow(w, 5)) - 1 / (1680 * F.pow(w, 7)) + 1 / (1188 * F.pow(w, 9))
              - 691 / (360360 * F.pow(w, 11)))
    shift = F.log(z) + F.log(z + 1) + F.log(z + 2) + F.log(z + 3) + F.log(z + 4) + F.log(z + 5)
    return series - shift


def digamma(z: Column) -> Column:
    """d/dz ln Gamma(z) for z > 0."""
    w = z + 6
    series = (F.log(w) - 1 / (2 * w) - 1 / (12 * F.pow(w, 2)) + 1 / (120 * F.pow(w, 4)) - 1 / (252 * F.pow(w, 6))
              + 1 / (240 * F.pow(w, 8)) - 1 / (132 * F.pow(w, 10)))
    return series - (1 / z + 1 / (z + 1) + 1 / (z + 2) + 1 / (z + 3) + 1 / (z + 4) + 1 / (z + 5))


def py_digamma(z: float) -> float:
    """The same series on the driver, for constants."""
    w = z + 6
    series = (math.log(w) - 1 / (2 * w) - 1 / (12 * w**2) + 1 / (120 * w**4) - 1 / (252 * w**6)
              + 1 / (240 * w**8) - 1 / (132 * w**10))
    return series - sum(1 / (z + k) for k in range(6))
