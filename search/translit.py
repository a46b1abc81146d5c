"""Latin (SERA) transliteration of queries into Ethiopic script, for users without an Amharic keyboard."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

_LATIN_WORD = re.compile(r"[A-Za-z']+")
_ETHIOPIC = re.compile("[\u1200-\u137f]")
# Gemination is not written in Ethiopic script: "addis" is አዲስ, not አድዲስ.
_DOUBLED_CONSONANT = re.compile(r"([b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z])\1")
_VOWEL = re.compile(r"[aeiouAEIOU]")
# Amharic syllables are CV, CVC or CVCC: between two vowels stand at most three consonants (mengist,
# hagerachn), counting SERA's digraphs and labialized letters (sh, ch, ts, ny, zh, kw…) as one.
_ONE_CONSONANT = re.compile(r"sh|ch|ts|ny|zh|kh|ph|[bcdfghj-np-tv-z]w", re.IGNORECASE)

MAX_CLUSTER = 3
"""The most consonants in a row a Latin-typed Amharic word has (after digraphs and gemination)."""
_CLUSTER = re.compile(f"[^aeiouAEIOU']{{{MAX_CLUSTER + 1}}}")


@lru_cache(maxsize=1)
def _converter():
    from abugida import ScriptConverter

    return ScriptConverter()


def _word(word: str) -> str:
    try:
        return _converter().transliterate(_DOUBLED_CONSONANT.sub(r"\1", word), "bwd")
    except (ValueError, KeyError):
        return word


def latin_only(query: str) -> bool:
    """True for a query with Latin letters and no Ethiopic ones (``selam buna``, ``xyzqwv``)."""
    return bool(_LATIN_WORD.search(query)) and not _ETHIOPIC.search(query)


def pronounceable(word: str) -> bool:
    """Whether a Latin word could be Amharic typed in Latin letters: it has a vowel and no more than
    :data:`MAX_CLUSTER` consonants in a row (``selam``, ``timhirt``, ``tsehay``; not ``xyzqwv``, ``strengths``).
    Strict SERA without vowels (``tmhrt`` for ትምህርት) is converted only when asked (mode ``on``).

    >>> [pronounceable(w) for w in ("selam", "addis", "mengist", "xyzqwv", "strengths", "x")]
    [True, True, True, False, False, False]
    """
    if not _VOWEL.search(word):
        return False
    folded = _ONE_CONSONANT.sub("C", _DOUBLED_CONSONANT.sub(r"\1", word.replace("'", "")))
    return not _CLUSTER.search(folded)


def looks_transliterated(query: str) -> bool:
    """True for Amharic typed in Latin letters: Latin letters only (no Ethiopic), and every Latin word
    :func:`pronounceable` as Amharic, e.g. ``selam buna``; Latin nonsense (``xyzqwv blorf``) is not.

    >>> looks_transliterated("selam buna"), looks_transliterated("xyzqwv blorf"), looks_transliterated("ሰላም buna")
    (True, False, False)
    """
    return latin_only(query) and all(pronounceable(w) for w in _LATIN_WORD.findall(query))


def to_ethiopic(query: str) -> str:
    """Transliterate the Latin words of a SERA query; other characters are kept.

    >>> to_ethiopic("selam buna")
    'ሰላም ቡና'
    """
    return _LATIN_WORD.sub(lambda m: _word(m.group(0)), query)


def transliterate_query(query: str, mode: Literal["auto", "on", "off"] = "auto") -> str:
    """The query as searched, the one decision for every interface (page, command line, service):
    ``on`` converts Latin typing to Ethiopic, ``auto`` converts when the query
    :func:`looks_transliterated` (Latin letters, no Ethiopic, every word pronounceable as Amharic),
    ``off`` never. Returns ``query`` itself when nothing changes (the caller says what was searched).

    >>> transliterate_query("selam", "off"), transliterate_query("selam"), transliterate_query("xyzqwv blorf")
    ('selam', 'ሰላም', 'xyzqwv blorf')
    """
    if mode == "on" or (mode == "auto" and looks_transliterated(query)):
        return to_ethiopic(query)
    return query
