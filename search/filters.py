"""Filters and facets over an index's fields (:mod:`index.fields`).

A filter is ``FIELD OP VALUE``: ``source=ሪፖርተር``, ``source=ሪፖርተር,አዲስ፡አድማስ`` (any of several),
``source!=ሪፖርተር``, ``date>=1995``, ``date<1996-05``, ``pages>10``. Keyword fields take ``=`` and ``!=``;
number and date fields all six. A date is ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` in the field's own
calendar (an Ethiopian-dated field: Ethiopian years), and stands for its whole span: ``date=1995``
is the year, ``date>1995`` after it, ``date<=1995-05`` to the end of that month. ``date`` names the
index's date field when it has exactly one. Filters combine with AND; ``!=`` keeps documents
without the field, the others do not.

The filters become a boolean mask over passage rows that the first stage applies inside each
retriever (:meth:`search.local.LocalIndex.lexical`/``dense`` ``allow``), so a filtered search returns
the best documents among those that match.

Facets count, per keyword value and per year of a date field, the documents the first stage
retrieved (each retriever's top ``depth`` among the documents that pass the filters, united), i.e.
the documents a result page can come from.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from ..index.calendar import DateError, parse_span
from ..index.fields import MISSING_DAY, FieldSet

from .schema import QueryError

FACET_VALUES = 20
"""Most values a keyword facet lists (the most frequent)."""
_FILTER = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$", re.S)


class FilterError(QueryError):
    """A filter that cannot be applied: unknown field, bad operator or value (the message says which)."""


def parse_filter(text: str) -> tuple[str, str, str]:
    """``FIELD OP VALUE`` as its three parts."""
    m = _FILTER.match(str(text))
    if not m or not m.group(3):
        raise FilterError(f"filter {text!r}: write FIELD=VALUE, FIELD!=VALUE or FIELD>=VALUE (also <=, >, <)")
    return m.group(1), m.group(2), m.group(3)


def resolve_field(fields: FieldSet, name: str) -> str:
    """The field a filter names (``date``: the index's one date field)."""
    if name in fields.specs:
        return name
    dates = fields.of_type("date")
    if name == "date" and len(dates) == 1:
        return dates[0]
    known = [n for n, s in fields.specs.items() if s.type != "text"]
    raise FilterError(f"unknown field {name!r}: this index can be filtered by "
                      + (", ".join(known) + (" (date = " + dates[0] + ")" if len(dates) == 1 else "")
                         if known else "nothing (it has no keyword, number or date fields)"))


def _norm(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def document_mask(fields: FieldSet, filters: Iterable[str], num_docs: int) -> np.ndarray | None:
    """True for each document that passes every filter (None: no filters)."""
    filters = [f for f in filters if str(f).strip()]
    if not filters:
        return None
    mask = np.ones(num_docs, dtype=bool)
    for text in filters:
        name, op, value = parse_filter(text)
        field = resolve_field(fields, name)
        spec = fields.specs[field]
        if spec.type == "text":
            raise FilterError(f"filter {text!r}: {field} is a text field; filter by a keyword, number or date field")
        array = np.asarray(fields.array(field))
        if array.shape[0] != num_docs:
            raise FilterError(f"field {field} has {array.shape[0]} values for {num_docs} documents; rebuild the index")
        if spec.type == "keyword":
            if op not in ("=", "!="):
                raise FilterError(f"filter {text!r}: {field} is a keyword field: use = or != (several values: A,B)")
            vocab = {v: i for i, v in enumerate(fields.vocabulary(field))}
            wanted = [_norm(v) for v in value.split(",") if v.strip()]
            unknown = [v for v in wanted if v not in vocab]
            if unknown:
                some = ", ".join(list(vocab)[:8]) + (" …" if len(vocab) > 8 else "")
                raise FilterError(f"filter {text!r}: {field} has no value {unknown[0]!r} (values: {some})")
            hit = np.isin(array, [vocab[v] for v in wanted])
            mask &= hit if op == "=" else ~hit
        elif spec.type == "number":
            try:
                number = float(value)
            except ValueError:
                raise FilterError(f"filter {text!r}: {field} is a number field; {value!r} is not a number") from None
            if math.isnan(number):
                raise FilterError(f"filter {text!r}: {value!r} is not a number")
            present = ~np.isnan(array)
            mask &= _compare(array, op, number, number) & present if op != "!=" else (~present | (array != number))
        else:
            try:
                first, last = parse_span(value, spec.calendar)
            except DateError as exc:
                raise FilterError(f"filter {text!r}: {exc}") from None
            present = array != MISSING_DAY
            if op == "!=":
                mask &= ~present | (array < first) | (array > last)
            else:
                mask &= present & _compare(array, op, first, last)
    return mask


def _compare(array: np.ndarray, op: str, first, last) -> np.ndarray:
    """``array OP value`` where the value spans ``first..last`` (a date's year or month)."""
    if op == "=":
        return (array >= first) & (array <= last)
    if op == ">=":
        return array >= first
    if op == ">":
        return array > last
    if op == "<=":
        return array <= last
    return array < first


def passage_mask(doc_mask: np.ndarray, doc_offsets: np.ndarray) -> np.ndarray:
    """A document mask spread over the documents' passage rows."""
    return np.repeat(doc_mask, np.diff(np.asarray(doc_offsets, dtype=np.int64)))


def facets(fields: FieldSet, docs: Sequence[int]) -> dict[str, list[list]]:
    """For each keyword field, its most frequent values among ``docs`` (``[value, count]``, most
    first, at most :data:`FACET_VALUES`); for each date field, ``[year, count]`` by year (in its
    calendar). Documents without the field are not counted."""
    out: dict[str, list[list]] = {}
    rows = np.asarray(sorted(set(int(d) for d in docs)), dtype=np.int64)
    for name, spec in fields.specs.items():
        if spec.type == "keyword":
            codes = np.asarray(fields.array(name))[rows] if rows.size else np.zeros(0, np.int32)
            vocab = fields.vocabulary(name)
            counts = Counter(int(c) for c in codes if c >= 0)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], vocab[kv[0]]))[:FACET_VALUES]
            out[name] = [[vocab[c], n] for c, n in ranked]
        elif spec.type == "date":
            yrs = np.asarray(fields.array(name, "year"))[rows] if rows.size else np.zeros(0, np.int16)
            counts = Counter(int(y) for y in yrs if y != 0)
            out[name] = [[y, counts[y]] for y in sorted(counts)]
    return out


def sort_key(fields: FieldSet, sort: str):
    """For ``sort`` ``date_desc``/``date_asc``: a key of a document row (undated documents last);
    None for relevance or an index without a date field."""
    if sort == "relevance":
        return None
    dates = fields.of_type("date")
    if not dates:
        raise FilterError(f"sort {sort!r}: this index has no date field")
    array = np.asarray(fields.array(dates[0]))
    newest = sort == "date_desc"

    def key(doc: int) -> tuple[int, int]:
        day = int(array[doc])
        if day == MISSING_DAY:
            return (1, 0)
        return (0, -day if newest else day)

    return key
