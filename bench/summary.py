"""The current summary at the top of bench/RESULTS.md: the latest figure of each benchmark beside its peer.

``record(key, ...)`` stores one benchmark's latest figure in ``bench/summary.json`` (with the UTC
date and the checkout's commit) and rewrites the table between the two summary markers of
RESULTS.md; the log of runs below the table is appended by each script as before. Rows a script
does not record yet were entered from the log by hand (their ``entry`` names the log heading).

    python bench/summary.py          # rewrite the table from summary.json
"""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
STORE = HERE / "summary.json"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- summary: begin (bench/summary.py writes this table) -->", "<!-- summary: end -->"
COLUMNS = ("work", "memberlake", "peer, same run", "ratio or gap", "target", "date", "commit", "entry")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--", "../lib"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "—"


def load() -> dict[str, dict[str, str]]:
    return json.loads(STORE.read_text(encoding="utf-8")) if STORE.exists() else {}


def record(key: str, work: str, memberlake: str, peer: str, ratio: str, target: str, entry: str) -> None:
    """Store ``key``'s latest figures (date and commit now) and rewrite the table."""
    rows = load()
    rows[key] = {"work": work, "memberlake": memberlake, "peer, same run": peer, "ratio or gap": ratio,
                 "target": target, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": _commit(),
                 "entry": entry}
    STORE.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_table(rows)


def record_into(results: str | Path, key: str, work: str, memberlake: str, peer: str, ratio: str, target: str,
                heading: str) -> None:
    """``record`` when the run appends to the repo's RESULTS.md (a run writing elsewhere, e.g. a
    scratch results file, leaves the summary alone); ``heading`` is the log entry's Markdown
    heading line, named in the row without its ``#`` marks."""
    if Path(results).resolve() == RESULTS:
        record(key, work, memberlake, peer, ratio, target, heading.strip().lstrip("# "))


def table(rows: dict[str, dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.get(c, "") for c in COLUMNS) + " |" for row in rows.values()]
    return "\n".join(lines)


def write_table(rows: dict[str, dict[str, str]]) -> None:
    text = RESULTS.read_text(encoding="utf-8")
    block = (f"{BEGIN}\n\n## Current summary (latest figure per benchmark)\n\n{table(rows)}\n\n"
             "Peers ran in the same script on the same machine (2 cores). A commit of — marks a row entered by hand "
             "from a log entry that did not record its commit; `+changes` a run on a checkout with changes under "
             "`lib/`. The log of runs follows, oldest first.\n\n" + END)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:   # first time: after the title and its intro line
        head, _, rest = text.partition("\n\n")
        first, _, rest = rest.partition("\n\n")
        text = f"{head}\n\n{first}\n\n{block}\n\n{rest}"
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_table(load())
