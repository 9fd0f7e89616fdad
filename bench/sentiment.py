"""Review sentiment on human-labelled public corpora, through the README's commands, beside the
plain single-node lexicon tool on the same texts.

Corpora (``../shared/data/reviews/``, not copied into the repo):
- English: the movie-review snippets of Hutto & Gilbert (VADER, ICWSM 2014), each the mean of 20
  human ratings in -4..4. Measured: Pearson r with the human mean over all sentences, and sign
  accuracy (score > 0 against mean > 0) on the sentences with |mean| >= 0.5. Plain tool: VADER.
- Chinese: ChnSentiCorp hotel reviews, 1 positive / 0 negative. Measured: ROC AUC and accuracy
  (score > 0, or SnowNLP's probability > 0.5). Plain tool: SnowNLP ``sentiments``.

Each corpus becomes a landing ``reviews`` file and runs ``memberlake pipeline --only
ingest,clean,reviews`` twice:
- **no ratings**: the lexicon alone (what a review export without star ratings gets);
- **with ratings**: each text's label as the review's rating (English: the human mean mapped to
  1-5 stars; Chinese: 5 or 1), the way review exports carry stars. The project then learns from
  them, cross-fitted: every review's score comes from models that never saw that review, so the
  figures are held-out ones.

    python bench/sentiment.py [--out bench/out/sentiment] [--corpora en zh]
    python bench/sentiment.py --scale-reviews 1000000 [--set spark.driver_memory=8g]   # throughput only

``--scale-reviews N`` measures throughput instead: N reviews drawn from both corpora (80% English,
20% Chinese, no ratings, so the lexicon pass alone) through the same command; reviews/s of the
``reviews`` job (its duration in ``job_runs``) and the peak resident memory of the process tree
(driver, JVM, Python workers), sampled every 0.2 s.
"""
from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "reviews"


def load(corpus: str):
    import pandas as pd

    if corpus == "en":
        with gzip.open(DATA / "movieReviewSnippets_GroundTruth.txt.gz", "rt", encoding="utf-8",
                       errors="replace") as fh:
            rows = [line.rstrip("\n").split("\t", 2) for line in fh if line.strip()]
        df = pd.DataFrame(rows, columns=["id", "truth", "text"])
        df["truth"] = df["truth"].astype(float)
        df["rating"] = ((df["truth"] + 4) / 2).round().clip(0, 4).astype(int) + 1
    else:
        df = pd.read_csv(DATA / "chnsenticorp_htl_all.csv.gz").dropna()
        df = df.rename(columns={"label": "truth", "review": "text"})
        df["rating"] = df["truth"].map({1: 5, 0: 1})
    df["review_id"] = [f"{corpus}-{i}" for i in range(len(df))]
    return df.reset_index(drop=True)


def landing(df, root: Path, ratings: bool) -> None:
    import pandas as pd

    out = pd.DataFrame({"review_id": df["review_id"], "body": df["text"],
                        "rating": df["rating"] if ratings else "", "created_at": "2024-01-01 00:00:00",
                        "channel": "web"})
    (root / "reviews").mkdir(parents=True, exist_ok=True)
    out.to_csv(root / "reviews" / "reviews.csv", index=False)


def read_scores(lake: Path):
    """review_sentiment's current files, read through its Delta log without a second JVM."""
    import json

    import pyarrow.dataset as ds

    log = sorted((lake / "review_sentiment" / "_delta_log").glob("*.json"))
    files = set()
    for path in log:
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files.add(action["add"]["path"])
            if "remove" in action:
                files.discard(action["remove"]["path"])
    table = ds.dataset([str(lake / "review_sentiment" / f) for f in sorted(files)], format="parquet").to_table(
        columns=["review_id", "language", "lexicon_score", "model_score", "blend_score", "method", "score"])
    return table.to_pandas()


def en_metrics(truth, score) -> dict[str, float]:
    import numpy as np

    strong = np.abs(truth) >= 0.5
    return {"pearson_r": float(np.corrcoef(truth, score)[0, 1]),
            "sign_accuracy": float(((score[strong] > 0) == (truth[strong] > 0)).mean())}


def zh_metrics(truth, score, threshold: float = 0.0) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {"roc_auc": float(roc_auc_score(truth, score)), "accuracy": float(((score > threshold) == (truth == 1)).mean())}


def plain(corpus: str, df) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    if corpus == "en":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()
        score = df["text"].map(lambda t: vader.polarity_scores(t)["compound"]).to_numpy()
        return en_metrics(df["truth"].to_numpy(), score), time.perf_counter() - t0
    from snownlp import SnowNLP

    score = df["text"].map(lambda t: SnowNLP(t).sentiments).to_numpy()
    return zh_metrics(df["truth"].to_numpy(), score, 0.5), time.perf_counter() - t0


def scale(n: int, out: Path, results: str, settings: list[str]) -> None:
    import json
    import shutil

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from run import PeakMemory

    texts = {c: load(c)["text"].to_numpy() for c in ("en", "zh")}
    rng = np.random.default_rng(7)
    root = out / f"scale-{n}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "landing" / "reviews").mkdir(parents=True)
    chunk = 1_000_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        zh = rng.random(size) < 0.2
        body = np.where(zh, rng.choice(texts["zh"], size), rng.choice(texts["en"], size))
        pd.DataFrame({"review_id": [f"s{start + i}" for i in range(size)], "body": body,
                      "created_at": "2024-01-01 00:00:00"}).to_csv(
            root / "landing" / "reviews" / f"part-{start // chunk:04d}.csv", index=False)
    memory = PeakMemory().start()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "memberlake.cli", "pipeline", "--only", "ingest,clean,reviews",
                    "--landing", str(root / "landing"), "--lakehouse", str(root / "lake"),
                    "--set", "privacy.require_key=false", *(f"--set={kv}" for kv in settings)], check=True)
    total = time.perf_counter() - t0
    memory.stop()
    runs = sorted((root / "lake" / "job_runs").rglob("*.parquet"))
    import pyarrow.parquet as pq

    table = pd.concat([pq.read_table(f, columns=["job", "duration_s", "status"]).to_pandas() for f in runs])
    seconds = float(table[(table.job == "reviews") & (table.status == "succeeded")]["duration_s"].max())
    text = (f"\n## review scoring throughput — `python bench/sentiment.py --scale-reviews {n}`\n\n"
            f"{n:,} reviews (80% English movie snippets, 20% Chinese hotel reviews, sampled; no ratings: "
            f"lexicon pass, aspects, summaries), `local[2]`{', ' + ', '.join(settings) if settings else ''}: "
            f"`reviews` job {seconds:.0f} s = "
            f"**{n / seconds:,.0f} reviews/s**; ingest + clean + reviews {total:.0f} s with JVM start; "
            f"peak RSS of the process tree {memory.peak / 1e9:.2f} GB.\n")
    Path(results).open("a", encoding="utf-8").write(text)
    print(text, json.dumps({"reviews_s": seconds}), flush=True)
    from summary import record_into

    record_into(results, "sentiment_scale", f"review scoring, {n:,} reviews (80% English, 20% Chinese)",
                f"{n / seconds:,.0f} reviews/s ({seconds:.0f} s), peak RSS {memory.peak / 1e9:.1f} GB", "—", "—",
                "10M reviews on local[2]", text.strip().splitlines()[0])


def main() -> None:
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "out" / "sentiment"))
    parser.add_argument("--corpora", nargs="+", default=["en", "zh"], choices=["en", "zh"])
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--scale-reviews", type=int, metavar="N", help="throughput on N sampled reviews instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for the --scale-reviews pipeline run, e.g. spark.driver_memory=8g")
    args = parser.parse_args()
    if args.scale_reviews:
        scale(args.scale_reviews, Path(args.out), args.results, args.set)
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## review sentiment on labelled corpora — {stamp}\n",
             "`python bench/sentiment.py`: each corpus as a landing `reviews` file through "
             "`memberlake pipeline --only ingest,clean,reviews` (`local[2]`, process wall time with JVM start), "
             "beside the plain tool on the same texts in the same script. With ratings, every score is "
             "cross-fitted (from models that did not see the review).\n",
             "| corpus | scorer | reviews | measure 1 | measure 2 | seconds |", "|---|---|---:|---:|---:|---:|"]
    summary: dict[str, tuple[float, float]] = {}
    for corpus in args.corpora:
        df = load(corpus)
        metric = en_metrics if corpus == "en" else zh_metrics
        names = ("Pearson r", "sign accuracy") if corpus == "en" else ("ROC AUC", "accuracy")
        base, base_s = plain(corpus, df)
        tool = "VADER compound" if corpus == "en" else "SnowNLP sentiments (> 0.5)"
        lines.append(f"| {corpus} | {tool} | {len(df):,} | {names[0]} {list(base.values())[0]:.4f} | "
                     f"{names[1]} {list(base.values())[1]:.4f} | {base_s:.0f} |")
        for ratings in (False, True):
            root = Path(args.out) / f"{corpus}-{'rated' if ratings else 'unrated'}"
            shutil.rmtree(root, ignore_errors=True)
            landing(df, root / "landing", ratings)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "memberlake.cli", "pipeline", "--only", "ingest,clean,reviews",
                            "--landing", str(root / "landing"), "--lakehouse", str(root / "lake"),
                            "--set", "privacy.require_key=false"], check=True)
            seconds = time.perf_counter() - t0
            scores = df[["review_id", "truth"]].merge(read_scores(root / "lake"), on="review_id", how="left")
            covered = scores["score"].notna()
            kinds = ["score"] + (["lexicon_score", "model_score", "blend_score"] if ratings else [])
            for kind in kinds:
                part = scores[covered & scores[kind].notna()]
                if part.empty:
                    continue
                m = metric(part["truth"].to_numpy(), part[kind].to_numpy())
                method = scores.loc[covered, "method"].mode().iat[0] if kind == "score" else kind.removesuffix("_score")
                label = (f"memberlake, {'with' if ratings else 'no'} ratings: "
                         f"{'final (' + method + ')' if kind == 'score' else method}")
                lines.append(f"| {corpus} | {label} | {len(part):,} | {names[0]} {list(m.values())[0]:.4f} | "
                             f"{names[1]} {list(m.values())[1]:.4f} | {seconds if kind == 'score' else 0:.0f} |")
                if kind == "score" and not ratings:
                    ours, peer = list(m.values())[0], list(base.values())[0]
                    summary[corpus] = (ours, peer)
            unsupported = int((~covered).sum())
            if unsupported:
                lines.append(f"| {corpus} | (not scored: language `unsupported` or quarantined) | {unsupported:,} | | | |")
    text = "\n".join(lines) + "\n"
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)
    sys.path.insert(0, str(HERE))
    from summary import record_into

    for corpus, (ours, peer) in summary.items():
        measure, tool = ("Pearson r with the rating", "VADER") if corpus == "en" else ("ROC AUC", "SnowNLP")
        language = "English" if corpus == "en" else "Chinese"
        record_into(args.results, f"sentiment_{corpus}_no_ratings", f"{language} reviews without ratings, {measure}",
                    f"{ours:.4f}", f"{tool} {peer:.4f}", f"{ours - peer:+.4f}", "≥ peer", lines[0])


if __name__ == "__main__":
    main()
