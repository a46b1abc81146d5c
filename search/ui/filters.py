"""What the page's filter sidebar and result dates need besides widgets: the index's filterable
fields, the filters a selection makes, a date in the reader's calendar (app.py draws them)."""

from __future__ import annotations

from dataclasses import dataclass

from ...index.calendar import CALENDARS, format_date, parse_date
from ...index.fields import FieldSet


@dataclass(frozen=True)
class FilterField:
    name: str
    type: str
    calendar: str | None = None
    values: tuple[str, ...] = ()
    """A keyword field's values (its vocabulary; from the last facets when the page talks to a service)."""
    years: tuple[int, int] | None = None
    """A date field's first and last year (in its calendar)."""


def filter_fields(manifest: dict, fields: FieldSet | None = None, facets: dict | None = None) -> list[FilterField]:
    """The keyword and date fields the sidebar offers, from the manifest (and the index's vocabularies)."""
    out = []
    for name, info in (manifest.get("fields") or {}).items():
        if info.get("type") == "keyword":
            if fields is not None and name in fields.specs:
                values = tuple(fields.vocabulary(name))
            else:
                values = tuple(str(v) for v, _ in (facets or {}).get(name, []))
            out.append(FilterField(name, "keyword", values=values))
        elif info.get("type") == "date" and info.get("range"):
            first, last = (int(d[:4]) for d in info["range"])
            out.append(FilterField(name, "date", info.get("calendar") or "gregorian", years=(first, last)))
    return out


def selection_filters(keywords: dict[str, list[str]], years: dict[str, tuple[int, int]],
                      fields: list[FilterField]) -> list[str]:
    """The filters of the sidebar's selection: chosen values of each keyword field (any of them),
    a date field's year range when narrower than the whole."""
    out = []
    for f in fields:
        chosen = keywords.get(f.name) or []
        if f.type == "keyword" and chosen:
            out.append(f"{f.name}={','.join(chosen)}")
        elif f.type == "date" and f.name in years and f.years and tuple(years[f.name]) != f.years:
            lo, hi = years[f.name]
            out += [f"{f.name}>={lo}", f"{f.name}<={hi}"]
    return out


def facet_counts(facets: dict, name: str) -> dict:
    """value -> count of one field's facet in a response (empty when the field was not counted)."""
    return {v: n for v, n in (facets or {}).get(name, [])}


def shown_date(value: str, calendar: str | None, wanted: str, language: str) -> str:
    """A stored date (``YYYY-MM-DD`` in ``calendar``) for reading in the ``wanted`` calendar."""
    source = calendar if calendar in CALENDARS else "gregorian"
    target = wanted if wanted in CALENDARS else source
    return format_date(parse_date(value, source), target, language)


def default_calendar(language: str) -> str:
    """The Amharic page shows Ethiopian dates, the English one Gregorian (the reader can switch)."""
    return "ethiopian" if language == "am" else "gregorian"
