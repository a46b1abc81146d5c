"""Facts about the Ethiopic script that the analyzer builds on.

The Ethiopic block (U+1200-U+137F) is laid out in rows of eight cells: one consonant per row,
one vowel order per column (ä, u, i, a, e, ə, o, wa). That regularity lets the analyzer fold
homophone letters row by row and lets the stemmer split a syllable into consonant + vowel.
"""

from __future__ import annotations

import re

# Vowel orders of a regular row.
ORDER_A1, ORDER_U, ORDER_I, ORDER_A, ORDER_E, ORDER_6, ORDER_O, ORDER_WA = range(8)

ETHIOPIC_PUNCTUATION = "፠፡።፣፤፥፦፧፨"
"""Ethiopic word space, full stop, comma, semicolon, colon, preface colon, question mark, paragraph."""

# Rows whose eight cells are all consonant + vowel syllables in the same column order.
_REGULAR_ROW_STARTS = (
    list(range(0x1200, 0x1248, 8))  # ሀ ለ ሐ መ ሠ ረ ሰ ሸ ቀ
    + list(range(0x1260, 0x1288, 8))  # በ ቨ ተ ቸ ኀ
    + list(range(0x1290, 0x12B0, 8))  # ነ ኘ አ ከ
    + [0x12C8]  # ወ
    + list(range(0x12D8, 0x12F0, 8))  # ዘ ዠ የ
    + list(range(0x12F0, 0x1308, 8))  # ደ ዸ ጀ
    + [0x1308]  # ገ
    + list(range(0x1320, 0x1358, 8))  # ጠ ጨ ጰ ጸ ፀ ፈ ፐ
)
_REGULAR_ROWS = frozenset(_REGULAR_ROW_STARTS)
# Labialized rows (ቈ ኈ ኰ ጐ): cells 0, 2, 3, 4, 5 hold the wä, wi, wa, we, wə syllables.
_LABIALIZED_ROWS = frozenset((0x1248, 0x1288, 0x12B0, 0x1310))
_LABIALIZED_CELLS = frozenset((0, 2, 3, 4, 5))


def decompose(char: str) -> tuple[int, int] | None:
    """Split a syllable into (row start code point, vowel order), or None if not regular.

    >>> decompose("ቶ") == (0x1270, ORDER_O)
    True
    """
    if len(char) != 1:
        return None
    cp = ord(char)
    if not 0x1200 <= cp < 0x1360:
        return None
    row = cp - (cp - 0x1200) % 8
    order = cp - row
    if row in _REGULAR_ROWS or (row == 0x12D0 and order < 7):  # ዐ row: 7 regular cells
        return row, order
    if row in _LABIALIZED_ROWS and order in _LABIALIZED_CELLS:
        return row, order
    return None


def compose(row: int, order: int) -> str:
    """The syllable of a row at a vowel order (inverse of :func:`decompose`)."""
    return chr(row + order)


def with_order(char: str, order: int) -> str | None:
    """The same consonant with another vowel: ``with_order("ቶ", ORDER_6) == "ት"``."""
    parts = decompose(char)
    if parts is None:
        return None
    return compose(parts[0], order)


def order_of(char: str) -> int | None:
    parts = decompose(char)
    return None if parts is None else parts[1]


def is_ethiopic(char: str) -> bool:
    cp = ord(char)
    return (
        0x1200 <= cp <= 0x137F
        or 0x1380 <= cp <= 0x139F
        or 0x2D80 <= cp <= 0x2DDF
        or 0xAB00 <= cp <= 0xAB2F
        or 0x1E7E0 <= cp <= 0x1E7FF
    )


_ETHIOPIC_NUMERAL_RE = re.compile("[፩-፼]+")
