"""matplotlib's pyplot, headless, imported on first use.

The command line imports every job module to build its parser, so a module-level pyplot import
cost every job about half a second at start, though only ``models`` and ``report`` draw charts.
``plt`` here stands in for the module and imports it on its first attribute access.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    matplotlib.pyplot.rcParams["svg.fonttype"] = "none"  # SVG text stays text: smaller, selectable labels
    return matplotlib.pyplot


class _Pyplot:
    def __getattr__(self, name: str) -> Any:
        return getattr(pyplot(), name)


plt: Any = _Pyplot()
