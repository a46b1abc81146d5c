"""Dates in the Ethiopian (ዓ.ም.) and Gregorian calendars.

A date is kept as one integer, its day number (the proleptic Gregorian ordinal of
:meth:`datetime.date.toordinal`), whatever calendar it was written in; conversion goes through
``convertdate``'s Coptic calendar, which has the Ethiopian one's structure (12 months of 30 days, then
a 13th of 5 days, 6 in a year before a Gregorian leap year) with years 276 fewer. Checked against
published correspondences in tests/test_calendar.py (Meskerem 1 on 11 or 12 September, Pagume 6).

Example::

    day = to_day(2016, 1, 1, "ethiopian")          # Meskerem 1, 2016 E.C.
    from_day(day, "gregorian")                      # (2023, 9, 12)
    format_date(day, "ethiopian", "am")             # 'መስከረም 1 2016 ዓ.ም.'
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Literal

import numpy as np

Calendar = Literal["ethiopian", "gregorian"]
CALENDARS: tuple[str, ...] = ("ethiopian", "gregorian")
ETHIOPIAN_OFFSET = 276
"""Ethiopian year = Coptic year + 276 (both count months and leap years alike)."""

MONTHS = {
    "ethiopian": {
        "am": ("መስከረም", "ጥቅምት", "ኅዳር", "ታኅሣሥ", "ጥር", "የካቲት", "መጋቢት", "ሚያዝያ", "ግንቦት", "ሰኔ", "ሐምሌ", "ነሐሴ", "ጳጉሜ"),
        "en": ("Meskerem", "Tikimt", "Hidar", "Tahsas", "Tir", "Yekatit", "Megabit", "Miyazya", "Ginbot", "Sene",
               "Hamle", "Nehase", "Pagume"),
    },
    "gregorian": {
        "am": ("ጃንዩወሪ", "ፌብሩወሪ", "ማርች", "ኤፕሪል", "ሜይ", "ጁን", "ጁላይ", "ኦገስት", "ሴፕቴምበር", "ኦክቶበር", "ኖቬምበር", "ዲሴምበር"),
        "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    },
}
ERA = {"ethiopian": {"am": "ዓ.ም.", "en": "E.C."}, "gregorian": {"am": "እ.ኤ.አ.", "en": ""}}

_DATE = re.compile(r"^\s*(\d{1,4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
_JD_OF_ORDINAL = 1721424.5
"""Julian day of ordinal day 0 (ordinal 1 = 1 January of year 1, Gregorian)."""


class DateError(ValueError):
    """A date that does not exist in its calendar, or text that is not a date; the message says which."""


def _coptic():
    from convertdate import coptic

    return coptic


def month_length(year: int, month: int, calendar: Calendar) -> int:
    if calendar == "ethiopian":
        if not 1 <= month <= 13:
            raise DateError(f"the Ethiopian calendar has months 1 to 13 (13 is Pagume), not {month}")
        return 30 if month <= 12 else (6 if year % 4 == 3 else 5)
    if not 1 <= month <= 12:
        raise DateError(f"the Gregorian calendar has months 1 to 12, not {month}")
    import calendar as _cal

    return _cal.monthrange(year, month)[1]


def to_day(year: int, month: int, day: int, calendar: Calendar) -> int:
    """The day number of a date (a :class:`DateError` if it does not exist, e.g. Pagume 6 of a common year)."""
    if not 1 <= year <= 9999:
        raise DateError(f"year {year} is out of range (1 to 9999)")
    length = month_length(year, month, calendar)
    if not 1 <= day <= length:
        name = MONTHS[calendar]["en"][month - 1]
        raise DateError(f"{name} {year} ({calendar}) has days 1 to {length}, not {day}")
    if calendar == "gregorian":
        return _dt.date(year, month, day).toordinal()
    return int(_coptic().to_jd(year - ETHIOPIAN_OFFSET, month, day) - _JD_OF_ORDINAL)


def from_day(number: int, calendar: Calendar) -> tuple[int, int, int]:
    """(year, month, day) of a day number in ``calendar``."""
    if calendar == "gregorian":
        d = _dt.date.fromordinal(int(number))
        return d.year, d.month, d.day
    y, m, d = _coptic().from_jd(int(number) + _JD_OF_ORDINAL)
    return int(y) + ETHIOPIAN_OFFSET, int(m), int(d)


def parse_span(text: str, calendar: Calendar) -> tuple[int, int]:
    """The first and last day numbers of ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` in ``calendar``."""
    m = _DATE.match(str(text))
    if not m:
        raise DateError(f"{text!r} is not a date: write YYYY, YYYY-MM or YYYY-MM-DD ({calendar} calendar)")
    year, month, day = (int(g) if g else None for g in m.groups())
    if month is None:
        last_month = 13 if calendar == "ethiopian" else 12
        return to_day(year, 1, 1, calendar), to_day(year, last_month, month_length(year, last_month, calendar), calendar)
    if day is None:
        return to_day(year, month, 1, calendar), to_day(year, month, month_length(year, month, calendar), calendar)
    first = to_day(year, month, day, calendar)
    return first, first


def parse_date(text: str, calendar: Calendar) -> int:
    """The day number of ``YYYY-MM-DD`` (or the first day of ``YYYY-MM`` / ``YYYY``)."""
    return parse_span(text, calendar)[0]


def iso(number: int, calendar: Calendar) -> str:
    """``YYYY-MM-DD`` in ``calendar`` (month 13 is Pagume in the Ethiopian one)."""
    y, m, d = from_day(number, calendar)
    return f"{y:04d}-{m:02d}-{d:02d}"


def format_date(number: int, calendar: Calendar, language: str = "am") -> str:
    """A date for reading: ``መስከረም 1 2016 ዓ.ም.``, ``Meskerem 1, 2016 E.C.``, ``12 Sep 2023``."""
    y, m, d = from_day(number, calendar)
    lang = "am" if language == "am" else "en"
    month = MONTHS[calendar][lang][m - 1]
    era = ERA[calendar][lang]
    if calendar == "gregorian" and lang == "en":
        return f"{d} {month} {y}"
    if lang == "en":
        return f"{month} {d}, {y} {era}".strip()
    return f"{month} {d} {y} {era}".strip()


def years(numbers: np.ndarray, calendar: Calendar) -> np.ndarray:
    """The year (in ``calendar``) of each day number, vectorized (the year facet counts these)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if calendar == "gregorian":
        days = (numbers - _dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
        return days.astype("datetime64[Y]").astype(np.int64) + 1970
    jd = np.floor(numbers + _JD_OF_ORDINAL - _coptic().EPOCH)  # convertdate.coptic.from_jd, over arrays
    return np.floor((4 * jd + 1463) / 1461).astype(np.int64) + ETHIOPIAN_OFFSET
