"""PNG charts logged as MLflow artifacts (matplotlib, headless); inputs are small driver-side lists."""
from __future__ import annotations

from pathlib import Path

from memberlake.plotting import plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def silhouette_elbow(silhouettes: dict[int, float], costs: dict[int, float], chosen: int, path: Path) -> Path:
    ks = sorted(silhouettes)
    fig, left = plt.subplots(figsize=(6, 3.6))
    left.plot(ks, [silhouettes[k] for k in ks], "o-", color="tab:blue", label="silhouette")
    left.axvline(chosen, color="grey", linestyle="--", linewidth=1)
    left.set_xlabel("k")
    left.set_ylabel("silhouette", color="tab:blue")
    right = left.twinx()
    right.plot(ks, [costs.get(k, float("nan")) for k in ks], "s-", color="tab:orange", label="cost")
    right.set_ylabel("within-cluster cost (elbow)", color="tab:orange")
    left.set_title(f"k chosen by silhouette: {chosen}")
    return _save(fig, path)


def cluster_profile(rows: list[dict], labels: dict[int, str], path: Path) -> Path:
    """Heat map of z-scores: clusters x features."""
    clusters = sorted({int(r["cluster"]) for r in rows})
    features = sorted({r["feature"] for r in rows})
    z = [[0.0] * len(features) for _ in clusters]
    for r in rows:
        z[clusters.index(int(r["cluster"]))][features.index(r["feature"])] = float(r["z"])
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(features), 1.2 + 0.5 * len(clusters)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=45, ha="right")
    ax.set_yticks(range(len(clusters)), [f"{c}: {labels.get(c, '')}" for c in clusters])
    fig.colorbar(image, ax=ax, label="z vs population")
    return _save(fig, path)


def roc(fpr, tpr, auc: float, baseline_auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"model AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", label=f"chance (recency only: {baseline_auc:.3f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr(recall, precision, auc: float, base_rate: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(recall, precision, label=f"model PR AUC {auc:.3f}")
    ax.axhline(base_rate, linestyle="--", color="grey", label=f"churn rate {base_rate:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="upper right")
    return _save(fig, path)


def calibration(rows: list[dict], path: Path) -> Path:
    pts = [r for r in rows if r["persons"] > 0]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot([r["mean_predicted"] for r in pts], [r["observed_rate"] for r in pts], "o-")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed churn rate")
    return _save(fig, path)
