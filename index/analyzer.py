"""The Amharic analyzer: text in, index terms out.

Each step is named, documented, switchable, and recorded in the index manifest so that queries
are analyzed exactly as the passages were.

>>> Analyzer(AnalyzerConfig(roots=False, keep_surface=False)).tokens("የኢትዮጵያ መንግሥት ዓመታዊ በጀት፡፡")
['ኢትዮጵያ', 'መንግስት', 'አመት', 'በጀት']
>>> Analyzer().tokens("ሕዝቡ ተሰደዱ")  # default: stem, folded surface form, root feature
['ህዝብ', 'ህዝቡ', '$ህዝብ', 'ተሰደድ', 'ተሰደዱ', '$ስድ']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import resources

from . import ethiopic as eth

ANALYZER_NAME = "amharic"
ANALYZER_VERSION = "1"


class AnalyzerMismatchError(ValueError):
    """An index was built with an analyzer this code cannot reproduce."""


# --- step: homophone and variant letter folding ------------------------------------------------


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}

    def row(src: int, dst: int, n: int = 7) -> None:
        for i in range(n):
            table[src + i] = chr(dst + i)

    row(0x1210, 0x1200)  # ሐ ሑ ሒ ሓ ሔ ሕ ሖ -> ሀ ሁ ሂ ሃ ሄ ህ ሆ
    row(0x1280, 0x1200)  # ኀ ኁ ኂ ኃ ኄ ኅ ኆ -> ሀ ...
    row(0x1220, 0x1230, 8)  # ሠ ሡ ሢ ሣ ሤ ሥ ሦ ሧ -> ሰ ሱ ሲ ሳ ሴ ስ ሶ ሷ
    row(0x12D0, 0x12A0)  # ዐ ዑ ዒ ዓ ዔ ዕ ዖ -> አ ኡ ኢ ኣ ኤ እ ኦ
    row(0x1340, 0x1338, 8)  # ፀ ፁ ፂ ፃ ፄ ፅ ፆ ፇ -> ጸ ጹ ጺ ጻ ጼ ጽ ጾ ጿ
    table[0x1217] = "ኋ"  # ሗ -> ኋ
    table[0x1288] = "ኋ"  # ኈ -> ኋ
    # First and fourth order of the laryngeals sound the same: ሃ = ሀ, ኣ = አ.
    for src, dst in (("ሃ", "ሀ"), ("ኣ", "አ"), ("ሓ", "ሀ"), ("ኃ", "ሀ"), ("ዓ", "አ")):
        table[ord(src)] = dst
    # Old labialized letters and their modern spellings.
    for src, dst in (("ቈ", "ቆ"), ("ኰ", "ኮ"), ("ጐ", "ጎ"), ("ዀ", "ኾ"), ("ቍ", "ቁ"), ("ኵ", "ኩ"), ("ጕ", "ጉ"), ("ዉ", "ው")):
        table[ord(src)] = dst
    return table


_FOLD_TABLE = _build_fold_table()

# C + ኡ-order followed by ዋ is the spelled-out form of the labialized letter: ጉዋደኛ = ጓደኛ.
_LABIALIZED_RE = re.compile("([\u1200-\u135a])ዋ")


# Rows whose labialized -wa form is not in the row's eighth cell.
_WA_ELSEWHERE = {0x1200: "ኋ", 0x1240: "ቋ", 0x12A8: "ኳ", 0x1308: "ጓ"}


def _labialize(match: re.Match[str]) -> str:
    char = match.group(1)
    parts = eth.decompose(char)
    if parts is None or parts[1] != eth.ORDER_U or parts[0] in (0x12A0, 0x12C8, 0x12E8):
        return match.group(0)  # not a consonant + u (አ, ወ and የ rows have no labialized form)
    return _WA_ELSEWHERE.get(parts[0]) or eth.compose(parts[0], eth.ORDER_WA)


def fold_homophones(word: str) -> str:
    """Fold homophone letters and spelling variants onto one form.

    >>> fold_homophones("ሕዝብ"), fold_homophones("ዓመት"), fold_homophones("ጉዋደኛ")
    ('ህዝብ', 'አመት', 'ጓደኛ')
    """
    word = word.translate(_FOLD_TABLE)
    if "ዋ" in word:
        word = _LABIALIZED_RE.sub(_labialize, word)
    return word


# --- step: Ethiopic numerals -------------------------------------------------------------------

_NUMERAL_RE = re.compile("[፩-፼]+")


@lru_cache(maxsize=4096)
def _numeral_value(geez: str) -> str:
    from abugida import NumeralConverter

    try:
        return str(NumeralConverter().convert(geez, "gz", "ha"))
    except (ValueError, KeyError, IndexError):
        return geez


def convert_numerals(text: str) -> str:
    """Write Ethiopic numerals as Arabic digits: ``፲፱፻፹፯`` -> ``1987``."""
    return _NUMERAL_RE.sub(lambda m: _numeral_value(m.group(0)), text)


# --- step: light stemmer -----------------------------------------------------------------------

PREFIXES = ("እንደ", "እስከ", "ስለ", "ወደ", "በየ", "ከየ", "የ", "በ", "ለ", "ከ")
"""Prepositional prefixes, longest first (one is removed at most)."""

CLITICS = ("ም", "ና", "ን")
"""Word-final clitics: -ም 'also', -ና 'and', -ን object marker."""

PREFIX_EXCEPTIONS = frozenset(
    """ከተማ በሽታ ከፍተኛ በጣም ለውጥ የለም በላይ በኩል ለምሳሌ ከባድ በጀት በአል በረዶ በረሃ ወደብ ወደፊት
    ከንቲባ ከብት ከሰል ከበሮ የካቲት በቆሎ በርበሬ በረራ ለጋሽ ለምለም ከረሜላ በኋላ በፊት ከዚህ በዚህ ለዚህ የዚህ
    በሬ በር በግ ለማ የት ከሆነ በተለይ በየአመቱ ለምን ከዚያ በዚያ ስለዚህ እንደገና እስካሁን""".split()
)
"""Words that start like a prefix but are not prefixed (ከተማ 'city' is not ከ + ተማ)."""


def _sixth(char: str) -> str:
    return eth.with_order(char, eth.ORDER_6) or char


def _strip_suffix(w: str, min_len: int) -> str:
    """Remove one inflectional suffix, or return ``w`` unchanged."""
    n = len(w)
    # Gentilic plural (its -ን already removed as a clitic): ኢትዮጵያውያ(ን) -> ኢትዮጵያ
    if w.endswith("ውያ") and n - 2 >= min_len:
        return w[:-2]
    # Adjectival -አዊ: ባህላዊ -> ባህል; after a vowel -ያዊ/-ዊ: ኢትዮጵያዊ -> ኢትዮጵያ; feminine -ዊት
    for suffix in ("ዊት", "ዊ"):
        if w.endswith(suffix) and n - len(suffix) >= min_len:
            stem_last = w[-len(suffix) - 1]
            if eth.order_of(stem_last) == eth.ORDER_A and stem_last != "ያ":
                return w[: -len(suffix) - 1] + _sixth(stem_last)
            return w[: -len(suffix)]
    # Plural after a vowel: ቋንቋዎች, ቋንቋዎቹ -> ቋንቋ
    for suffix in ("ዎች", "ዎቹ"):
        if w.endswith(suffix) and n - 2 >= min_len:
            return w[:-2]
    if n >= 3:
        last, prev = w[-1], w[-2]
        # Plural -ኦች / -ኦቹ merged into the stem's last consonant: ቤቶች, ቤቶቹ -> ቤት
        if last in "ችቹ" and eth.order_of(prev) == eth.ORDER_O and n - 1 >= min_len:
            return w[:-2] + _sixth(prev)
        # Possessive -አችን -አችሁ -አቸው merged the same way: ቤታችን, ቤታቸው -> ቤት
        for suffix in ("ች", "ችሁ", "ቸው"):  # -አችን reaches here as -አች: its -ን is a clitic
            if w.endswith(suffix) and n > len(suffix) + 1:
                stem_last = w[-len(suffix) - 1]
                if eth.order_of(stem_last) == eth.ORDER_A and n - len(suffix) >= min_len:
                    return w[: -len(suffix) - 1] + _sixth(stem_last)
    # Definite article after a vowel: ቋንቋው, ከተማዋ -> ቋንቋ, ከተማ
    if n - 1 >= min_len and w[-1] in "ውዋ" and eth.order_of(w[-2]) not in (None, eth.ORDER_6):
        return w[:-1]
    # Definite article -ኡ merged into the last consonant: ቤቱ -> ቤት
    if n >= min_len and n >= 2 and eth.order_of(w[-1]) == eth.ORDER_U and w[-1] not in "ኡዉ":
        return w[:-1] + _sixth(w[-1])
    return w


def _strip_endings(w: str, min_stem: int) -> str:
    """Clitics and suffixes, repeatedly: ቤቶቻቸውንም -> ቤቶቻቸውን -> ቤቶቻቸው -> ቤቶች -> ቤት."""
    for _ in range(5):
        if len(w) > min_stem + 1 and w[-1] in CLITICS:
            w = w[:-1]
            continue
        shorter = _strip_suffix(w, min_stem)
        if shorter == w:
            break
        w = shorter
    return w


def _is_exception(word: str, stripped: str) -> bool:
    if stripped in PREFIX_EXCEPTIONS:
        return True
    return any(word[:k] in PREFIX_EXCEPTIONS for k in range(2, min(len(word), 6) + 1))


def stem(word: str, *, min_stem: int = 2) -> str:
    """Light Amharic stemmer: one prefix, word-final clitics, then inflectional suffixes.

    A rule applies only if at least ``min_stem`` syllables remain (a clitic only if more than
    ``min_stem`` remain), so short words stay whole; words that merely start like a prefix
    (:data:`PREFIX_EXCEPTIONS`: ከተማ is not ከ + ተማ) keep their first letter.

    >>> stem("ለገበሬዎቹም"), stem("ቤቶቻቸውን"), stem("በሬ"), stem("ከተማዋ"), stem("ባህላዊ"), stem("በሰላም")
    ('ገበሬ', 'ቤት', 'በሬ', 'ከተማ', 'ባህል', 'ሰላም')
    """
    if len(word) < 2 or not eth.is_ethiopic(word[0]):
        return word
    whole = _strip_endings(word, min_stem)
    if _is_exception(word, whole):
        return whole
    for prefix in PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= min_stem:
            return _strip_endings(word[len(prefix) :], min_stem)
    return whole


# --- step: root features (syllables split into consonant + vowel) ----------------------------

VERB_PREFIXES = ("የማይ", "የሚ", "የተ", "የማ", "ስለሚ", "እንዲ", "እንድ", "ሲ", "ሊ", "ያል", "አል", "አይ", "የ", "መ",
                 "ይ", "ት", "እን", "ተ", "አስ", "ለማ", "በማ", "ከሚ", "ሚ", "ማ")
"""Verbal prefixes (relative, negative, jussive, infinitive, passive, causative), longest first."""

VERB_SUFFIXES = ("ዋል", "ዋ", "ሉ", "ል", "ች", "ው", "ም", "ን")
"""Verbal endings (present perfect -ዋል, person markers, object and negation suffixes)."""

ROOT_MARK = "$"


def consonant_skeleton(word: str) -> str:
    """Each syllable reduced to its consonant (sixth order), repeated consonants once.

    >>> consonant_skeleton("ሰደደ"), consonant_skeleton("ጠበቀ")
    ('ስድ', 'ጥብቅ')
    """
    out: list[str] = []
    for char in word:
        parts = eth.decompose(char)
        c = eth.compose(parts[0], eth.ORDER_6) if parts else char
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def root_feature(term: str) -> str | None:
    """A root-like feature for an Amharic word: verbal affixes removed, then its consonants.

    Verbs inflect inside the stem (ተሰደዱ, ተሰደዋል, የሚሰደዱ); their consonant skeletons agree
    where their stems do not. Returned with a ``$`` mark so it never equals a word.

    >>> root_feature("ተሰደዱ") == root_feature("ተሰደዋል") == root_feature("የሚሰደዱ") == "$ስድ"
    True
    """
    if len(term) < 3 or not eth.is_ethiopic(term[0]):
        return None
    w = term
    for _ in range(2):
        for prefix in VERB_PREFIXES:
            if w.startswith(prefix) and len(w) - len(prefix) >= 2:
                w = w[len(prefix) :]
                break
    for _ in range(2):
        for suffix in VERB_SUFFIXES:
            if w.endswith(suffix) and len(w) - len(suffix) >= 2:
                w = w[: -len(suffix)]
                break
    skeleton = consonant_skeleton(w)
    return ROOT_MARK + skeleton if len(skeleton) >= 2 else None


# --- stopwords ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def default_stopwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("stopwords_am.txt").read_text(encoding="utf-8")
    words = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(fold_homophones(unicodedata.normalize("NFC", w)) for w in words if w)


# --- the analyzer ------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200c\u200d\u2060\ufeff"), None)
_INVISIBLE[0x200B] = " "
_WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Which steps run. Stored in the index manifest; see :class:`Analyzer`."""

    nfc: bool = True
    """Unicode NFC normalization (composed and decomposed input index alike)."""
    fold: bool = True
    """Homophone letter folding (ሐ/ኀ/ሃ -> ሀ, ሠ -> ሰ, ዐ/ኣ -> አ, ፀ -> ጸ, labialized variants)."""
    numerals: bool = True
    """Ethiopic numerals to Arabic digits (፲፱፻፹፯ -> 1987)."""
    lowercase: bool = True
    """Case-fold Latin and other cased scripts in mixed text."""
    stem: bool = True
    """Light prefix/suffix stemmer for Amharic words."""
    min_stem: int = 2
    """Fewest syllables a stemmed word keeps."""
    keep_surface: bool = True
    """Also index the unstemmed (folded) form next to the stem (exact forms count twice)."""
    roots: bool = True
    """Also index a root feature per Amharic word (:func:`root_feature`, marked ``$``)."""
    stopwords: bool = False
    """Drop Amharic function words (index/stopwords_am.txt)."""

    def to_dict(self) -> dict:
        return {"name": ANALYZER_NAME, "version": ANALYZER_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "AnalyzerConfig":
        name, version = data.get("name"), data.get("version")
        if name != ANALYZER_NAME or version != ANALYZER_VERSION:
            raise AnalyzerMismatchError(
                f"the index was built with analyzer {name!r} version {version!r}, but this "
                f"amharic-search has {ANALYZER_NAME!r} version {ANALYZER_VERSION!r}; "
                "rebuild the index with `amharic-search index build`"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"name", "version"}
        if unknown:
            raise AnalyzerMismatchError(f"unknown analyzer settings in the index: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Analyzer:
    """Turns Amharic (and mixed) text into index terms.

    Example::

        analyzer = Analyzer(AnalyzerConfig(stem=False))
        analyzer.tokens("ሕዝቡ ፲ ዓመት")   # ['ህዝቡ', '10', 'አመት']
    """

    config: AnalyzerConfig = field(default_factory=AnalyzerConfig)

    def __post_init__(self) -> None:
        self._stop = default_stopwords() if self.config.stopwords else frozenset()
        self._cache: dict[str, tuple[str, ...]] = {}

    def normalize(self, text: str) -> str:
        """Character-level steps: NFC, invisible characters, numerals, case."""
        cfg = self.config
        if cfg.nfc:
            text = unicodedata.normalize("NFC", text)
        text = text.translate(_INVISIBLE)
        if cfg.numerals:
            text = convert_numerals(text)
        if cfg.lowercase:
            text = text.casefold()
        return text

    def words(self, text: str) -> list[str]:
        """Split on anything that is not a letter, digit or mark (Ethiopic punctuation included)."""
        return _WORD_RE.findall(self.normalize(text))

    def _terms(self, word: str) -> tuple[str, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        cfg = self.config
        folded = fold_homophones(word) if cfg.fold else word
        if folded in self._stop:
            out: tuple[str, ...] = ()
        else:
            terms = [folded]
            if cfg.stem:
                stemmed = stem(folded, min_stem=cfg.min_stem)
                terms = [stemmed, folded] if cfg.keep_surface and stemmed != folded else [stemmed]
            if cfg.roots and (root := root_feature(terms[0])):
                terms.append(root)
            out = tuple(terms)
        if len(self._cache) < 500_000:
            self._cache[word] = out
        return out

    def tokens(self, text: str) -> list[str]:
        """Index terms of ``text``, in order."""
        out: list[str] = []
        for word in self.words(text):
            out.extend(self._terms(word))
        return out

    def term_spans(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, terms) for each word of ``text`` as given (for highlighting)."""
        spans = []
        for m in _WORD_RE.finditer(text):
            spans.append((m.start(), m.end(), tuple(self.tokens(m.group(0)))))
        return spans

    def to_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_dict(cls, data: dict) -> "Analyzer":
        return cls(AnalyzerConfig.from_dict(data))
