"""Self-contained HTML: inline SVG charts (matplotlib), tables, no scripts or external files.

Everything here works on small driver-side values (aggregates and top-N lists) that
:mod:`memberlake.report.gather` computed in Spark.
"""
from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from memberlake.plotting import plt  # SVG text stays text (set there)


@dataclass
class Section:
    """One report section: headline figures, charts (inline SVG) and tables."""

    key: str
    title: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    charts: list[tuple[str, str, str]] = field(default_factory=list)  # (name, caption, svg)
    tables: list[tuple[str, list[str], list[Sequence[Any]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, label: str, value: Any) -> None:
        self.figures.append((label, _fmt(value)))

    def table(self, caption: str, columns: list[str], rows: list[Sequence[Any]]) -> None:
        self.tables.append((caption, columns, rows))

    def chart(self, name: str, caption: str, fig) -> None:
        self.charts.append((name, caption, svg(fig)))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def svg(fig) -> str:
    """The figure as an inline ``<svg>`` element (XML prolog stripped)."""
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    # the XML prolog and the RDF metadata block (creator, date) have no place inline
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def bar(labels: list[str], values: list[float], title: str, xlabel: str = "", horizontal: bool = True):
    fig, ax = plt.subplots(figsize=(7, max(2.2, 0.32 * len(labels) + 1) if horizontal else 3.4))
    if horizontal:
        ax.barh(list(range(len(labels)))[::-1], values, color="#3b6ea8")
        ax.set_yticks(list(range(len(labels)))[::-1], labels, fontsize=8)
        ax.set_xlabel(xlabel)
    else:
        ax.bar(range(len(labels)), values, color="#3b6ea8")
        ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=30, ha="right")
        ax.set_ylabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig


def histogram(edges: list[float], counts: list[int], title: str, xlabel: str, marker: float | None = None,
              marker_label: str = ""):
    """Counts per bin (``edges`` are the bins' left edges, equal widths), log scale, a line at ``marker``."""
    fig, ax = plt.subplots(figsize=(7, 3.0))
    width = (edges[1] - edges[0]) if len(edges) > 1 else 1.0
    ax.bar(edges, counts, width=width, align="edge", color="#3b6ea8")
    if any(counts):
        ax.set_yscale("log")
    if marker is not None:
        ax.axvline(marker, color="#c0392b", linewidth=1.2, linestyle="--", label=marker_label)
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig


def grouped_bar(groups: list[str], series: dict[str, list[float]], title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([g + i * width for g in range(len(groups))], values, width, label=name)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def forecast_band(history: tuple[list, list[float]], forecast: tuple[list, list[float]],
                  band80: tuple[list[float], list[float]] | None, band95: tuple[list[float], list[float]] | None,
                  title: str, ylabel: str):
    """History as a line, the forecast after it with its 80% and 95% intervals as bands."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(history[0], history[1], color="#1d3557", linewidth=1.2, label="actual")
    x = forecast[0]
    for band, alpha, label in ((band95, 0.18, "95% interval"), (band80, 0.32, "80% interval")):
        if band is not None:
            ax.fill_between(x, band[0], band[1], color="#e07a1f", alpha=alpha, linewidth=0, label=label)
    ax.plot(x, forecast[1], color="#e07a1f", linewidth=1.4, label="forecast")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def intervals(labels: list[str], estimates: list[float], lows: list[float], highs: list[float], title: str,
              xlabel: str):
    """Estimates with their confidence intervals, one row each (a forest plot), zero marked."""
    fig, ax = plt.subplots(figsize=(7, max(2.2, 0.34 * len(labels) + 1)))
    y = list(range(len(labels)))[::-1]
    err = [[e - lo for e, lo in zip(estimates, lows, strict=True)], [hi - e for e, hi in zip(estimates, highs, strict=True)]]
    ax.errorbar(estimates, y, xerr=err, fmt="o", color="#3b6ea8", ecolor="#7a9cc6", capsize=3, markersize=4)
    ax.axvline(0, color="#888888", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig


def lines(x: list, series: dict[str, list[float]], title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, values in series.items():
        ax.plot(x, values, linewidth=1.3, label=name)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def heatmap(rows: list[str], cols: list[str], values: list[list[float]], title: str, center: bool = True):
    fig, ax = plt.subplots(figsize=(min(11, 1.5 + 0.75 * len(cols)), 1.2 + 0.42 * len(rows)))
    top = max([abs(v) for r in values for v in r] + [1e-9])
    image = ax.imshow(values, cmap="RdBu_r" if center else "Blues", aspect="auto",
                      vmin=-top if center else 0, vmax=top)
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i, r in enumerate(values):
        for j, v in enumerate(r):
            ax.text(j, i, f"{v:.1f}" if center else f"{v:,.0f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title, fontsize=10)
    return fig


def roc(fpr: list[float], tpr: list[float], auc: float | None, title: str):
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot(fpr, tpr, color="#3b6ea8", label=f"model (AUC {auc:.3f})" if auc is not None else "model")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.8;font-size:13px}nav{padding:8px 32px;background:#e8edf3;font-size:13px}
nav a{margin-right:14px;color:#1d3557}main{padding:8px 32px 40px}
section{background:#fff;border-radius:8px;padding:16px 22px;margin:18px 0;box-shadow:0 1px 3px #0002}
h2{margin-top:0;font-size:18px}.figures{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:10px}
.figure{background:#eef3f8;border-radius:6px;padding:8px 14px;min-width:120px}
.figure b{display:block;font-size:18px}.figure span{font-size:12px;color:#4a5a6a}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure.chart{margin:0}figure.chart svg{max-width:100%;height:auto}
figcaption{font-size:12px;color:#4a5a6a}table{border-collapse:collapse;font-size:12px;margin:10px 0}
td,th{border-bottom:1px solid #dde3ea;padding:4px 10px;text-align:left}th{background:#f0f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#7a4a00;font-size:13px}
"""


def _cell(value: Any) -> str:
    klass = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{klass}>{html.escape(_fmt(value))}</td>"


def _section(s: Section) -> str:
    parts = [f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>']
    if s.figures:
        parts.append('<div class="figures">' + "".join(
            f'<div class="figure"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for k, v in s.figures)
            + "</div>")
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in s.notes]
    if s.charts:
        parts.append('<div class="charts">' + "".join(
            f'<figure class="chart" data-chart="{html.escape(name)}">{body}<figcaption>{html.escape(cap)}</figcaption></figure>'
            for name, cap, body in s.charts) + "</div>")
    for caption, columns, rows in s.tables:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
        parts.append(f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
                     f"<tbody>{body}</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)} · generated {stamp}</p></header>"
            f"<nav>{nav}</nav><main>{''.join(_section(s) for s in sections)}</main></body></html>")
