"""The Ethiopian calendar against published correspondences, and conversion both ways."""

import datetime as dt

import numpy as np
import pytest

from amharic_search.index.calendar import DateError, format_date, from_day, iso, parse_span, to_day, years


def eth(y, m, d):
    return dt.date.fromordinal(to_day(y, m, d, "ethiopian"))


def test_meskerem_1_is_11_september_or_12_before_a_gregorian_leap_year():
    assert eth(2016, 1, 1) == dt.date(2023, 9, 12)  # 2024 is a Gregorian leap year
    assert eth(2017, 1, 1) == dt.date(2024, 9, 11)
    assert eth(2000, 1, 1) == dt.date(2007, 9, 12)  # the Ethiopian millennium
    assert eth(1998, 1, 1) == dt.date(2005, 9, 11)


def test_pagume_has_six_days_in_a_leap_year_only():
    assert eth(2015, 13, 6) == dt.date(2023, 9, 11)  # 2015 % 4 == 3
    assert eth(2011, 13, 6) == dt.date(2019, 9, 11)
    with pytest.raises(DateError, match="days 1 to 5"):
        to_day(2016, 13, 6, "ethiopian")
    with pytest.raises(DateError, match="months 1 to 13"):
        to_day(2016, 14, 1, "ethiopian")


def test_gregorian_leap_days():
    assert from_day(dt.date(2024, 2, 29).toordinal(), "ethiopian") == (2016, 6, 21)
    assert from_day(dt.date(2000, 2, 29).toordinal(), "ethiopian") == (1992, 6, 21)
    with pytest.raises(DateError):
        to_day(2023, 2, 29, "gregorian")
    assert to_day(2024, 2, 29, "gregorian") == dt.date(2024, 2, 29).toordinal()


def test_round_trip_over_two_centuries_and_vectorized_years():
    start, stop = dt.date(1900, 1, 1).toordinal(), dt.date(2100, 12, 31).toordinal()
    days = np.arange(start, stop + 1)
    eth_years = years(days, "ethiopian")
    greg_years = years(days, "gregorian")
    for n in range(start, stop + 1, 7):  # every 7th day, both ways
        y, m, d = from_day(n, "ethiopian")
        assert to_day(y, m, d, "ethiopian") == n
        assert eth_years[n - start] == y
        assert greg_years[n - start] == dt.date.fromordinal(n).year
    # each Ethiopian year is 365 or 366 days long, 366 when year % 4 == 3
    for y in range(1900, 2090):
        length = to_day(y + 1, 1, 1, "ethiopian") - to_day(y, 1, 1, "ethiopian")
        assert length == (366 if y % 4 == 3 else 365)


def test_spans_iso_and_display():
    first, last = parse_span("1996", "ethiopian")
    assert iso(first, "ethiopian") == "1996-01-01" and iso(last, "ethiopian") == "1996-13-05"
    assert iso(parse_span("1995", "ethiopian")[1], "ethiopian") == "1995-13-06"  # 1995 % 4 == 3: Pagume 6
    assert parse_span("1995-13", "ethiopian")[1] == to_day(1995, 13, 6, "ethiopian")
    assert parse_span("2024-02", "gregorian")[1] == dt.date(2024, 2, 29).toordinal()
    day = to_day(2016, 1, 1, "ethiopian")
    assert format_date(day, "ethiopian", "am") == "መስከረም 1 2016 ዓ.ም."
    assert format_date(day, "ethiopian", "en") == "Meskerem 1, 2016 E.C."
    assert format_date(day, "gregorian", "en") == "12 Sep 2023"
    for bad in ("95-1-1x", "last year", "1996-13-06"):
        with pytest.raises(DateError):
            parse_span(bad, "ethiopian")
