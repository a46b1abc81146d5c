"""Latin (SERA) transliteration of queries into Ethiopic script, for users without an Amharic keyboard."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

_LATIN_WORD = re.compile(r"[A-Za-z']+")
_ETHIOPIC = re.compile("[\u1200-\u137f]")
# Gemination is not written in Ethiopic script: "addis" is አዲስ, not አድዲስ.
_DOUBLED_CONSONANT = re.compile(r"([b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z])\1")


@lru_cache(maxsize=1)
def _converter():
    from abugida import ScriptConverter

    return ScriptConverter()


def _word(word: str) -> str:
    try:
        return _converter().transliterate(_DOUBLED_CONSONANT.sub(r"\1", word), "bwd")
    except (ValueError, KeyError):
        return word


def looks_transliterated(query: str) -> bool:
    """True for a query written in Latin letters only (no Ethiopic), e.g. ``selam buna``."""
    return bool(_LATIN_WORD.search(query)) and not _ETHIOPIC.search(query)


def to_ethiopic(query: str) -> str:
    """Transliterate the Latin words of a SERA query; other characters are kept.

    >>> to_ethiopic("selam buna")
    'ሰላም ቡና'
    """
    return _LATIN_WORD.sub(lambda m: _word(m.group(0)), query)


def transliterate_query(query: str, mode: Literal["auto", "on", "off"] = "auto") -> str:
    """The query as searched, the one decision for every interface: ``on`` converts Latin typing to
    Ethiopic, ``auto`` converts when the query looks transliterated (Latin letters, no Ethiopic),
    ``off`` never. Returns ``query`` itself when nothing changes (the caller says what was searched).

    >>> transliterate_query("selam", "off")
    'selam'
    """
    if mode == "on" or (mode == "auto" and looks_transliterated(query)):
        return to_ethiopic(query)
    return query
