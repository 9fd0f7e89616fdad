"""Which analyser a review goes to: Chinese, English, or ``unsupported`` (never a guess).

Script share decides Chinese against the Latin-script languages (kana, Hangul, Cyrillic, Arabic
... are ``unsupported``). Among Latin-script texts, function words tell English from the other
common Latin-script languages (German, French, Spanish, Italian, Portuguese, Dutch): a text with
more of theirs than of English's is ``unsupported``. Terse English ("A taut, intelligent
drama.") has few function words of either kind, so a text with none of them is English when it
is plain ASCII and ``unsupported`` when it has accented letters. A language delivered with the
review wins over detection when it is one the project analyses.
"""
from __future__ import annotations

import re
import unicodedata

EN, ZH, UNSUPPORTED = "en", "zh", "unsupported"
SUPPORTED = (EN, ZH)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Frequent function words. No word is in both sets, and words shared by English and another
# language ("a", "in", "is", "die", "so", "also", "has") are in neither.
_EN_FUNCTION = frozenset(
    "the and are was were it this that of to for with not but you they have had be been my i me we our "
    "very too would will can could should just than then what when which who an at on or if its it's "
    "don't didn't isn't wasn't doesn't no by from as all one his her their there how about more most "
    "much into out up do does did these those some any".split())
_OTHER_FUNCTION = frozenset(
    # German
    "der das und ist nicht ein eine mit sich auf dem den des sehr auch aber nur noch wie zu ich sie wir "
    # French
    "le les est et un une des du pas pour sur avec très mais je il elle nous vous qui que dans ce cette "
    # Spanish, Portuguese, Italian
    "el los las es y del muy pero por para con lo su una uno como más não um uma com muito mas para "
    "il gli della che è di non ma molto sono "
    # Dutch
    "het een niet zijn en van ook maar zeer wel".split())
def normalise_code(code: str | None) -> str | None:
    """A delivered language tag as the analyser name: ``zh-CN``, ``zh_Hant``, ``Chinese`` -> ``zh``;
    ``en-GB``, ``English`` -> ``en``; other tags keep their primary subtag; empty -> None."""
    if code is None or not str(code).strip():
        return None
    primary = re.split(r"[-_\s]", str(code).strip().lower())[0]
    return {"chinese": ZH, "cn": ZH, "zho": ZH, "chi": ZH, "english": EN, "eng": EN}.get(primary, primary)


def detect(text: str | None) -> str:
    """``en``, ``zh`` or ``unsupported`` from the text alone."""
    if not text:
        return UNSUPPORTED
    if _KANA_HANGUL.search(text):
        return UNSUPPORTED
    han = len(_HAN.findall(text))
    latin = [w for w in _WORD.findall(text) if not _HAN.search(w)]
    if han and han >= sum(len(w) for w in latin) / 4:     # a Chinese review may carry Latin brand names
        return ZH
    if not latin or any(not _is_latin_word(w) for w in latin):
        return UNSUPPORTED
    lowered = [w.lower() for w in latin]
    english = sum(w in _EN_FUNCTION for w in lowered)
    other = sum(w in _OTHER_FUNCTION for w in lowered)
    if other > english:
        return UNSUPPORTED
    if english:
        return EN
    return EN if all(w.isascii() for w in lowered) else UNSUPPORTED


def _is_latin_word(word: str) -> bool:
    return all(not ch.isalpha() or ch.isascii() or "LATIN" in unicodedata.name(ch, "") for ch in word)


def resolve(delivered: str | None, text: str | None) -> str:
    """The analyser for a review: the delivered language when given, else the detected one."""
    code = normalise_code(delivered)
    if code is None:
        return detect(text)
    return code if code in SUPPORTED else UNSUPPORTED


_EN_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[;])\s+")
_ZH_SPLIT = re.compile(r"[。！？!?；;\n…]+|(?<=[.])\s+")


def sentences(text: str | None, language: str) -> list[str]:
    """Sentences of a review (Chinese splits on its full-width stops too); empty ones dropped."""
    if not text:
        return []
    pattern = _ZH_SPLIT if language == ZH else _EN_SPLIT
    return [s.strip() for s in pattern.split(text) if s and s.strip() and _WORD.search(s)]
