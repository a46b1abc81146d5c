"""A corpus's fields beyond id, title and text: typed, and stored per document as plain arrays.

Each field has a type, inferred from its values at build (:func:`infer_fields`) or given
(``index build --field source=keyword --field date_ethiopian=date:ethiopian``):

``keyword``  a short value to filter and count by (a newspaper, an office): codes + a vocabulary
``number``   a number (float64; compared with ``>=`` etc.)
``date``     a date in its ``calendar`` (ethiopian or gregorian), kept as a day number (index.calendar)
``text``     anything else: stored and shown (the store's metadata), not filtered

An index directory holds them in ``fields/`` (:func:`write_fields`, bm25s style: numpy arrays and JSON)::

    fields/fields.json          {name: {"type": ..., "calendar": ..., "file": "000"}} (also in the manifest)
    fields/000.npy              one value per document row: keyword code (-1 none), number (NaN none),
                                date day number (0 none); files are numbered (a field's name is corpus
                                text, never a path)
    fields/000.values.json      a keyword field's vocabulary (code -> value)
    fields/000.year.npy         a date field's year in its calendar (0 none), for the year facet

Example::

    specs = infer_fields(records, {"date_ethiopian": "date:ethiopian"})
    write_fields(directory / FIELDS_DIR, records, specs)
    FieldSet.load(directory).display(0)      # {"source": "ሪፖርተር", "date_ethiopian": "1997-11-01"}
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence, get_args

import numpy as np

from .calendar import CALENDARS, Calendar, DateError, from_day, iso, parse_date, years
from .layout import FIELDS_DIR, FIELDS_FILE

FieldType = Literal["text", "keyword", "number", "date"]
RESERVED = ("id", "title", "text")
KEYWORD_MAX_CHARS = 100
"""Longer values make a text field."""
MISSING_DAY = 0


class FieldError(ValueError):
    """A bad field specification or value at build (the message says which field and why)."""


@dataclass(frozen=True)
class FieldSpec:
    type: FieldType
    calendar: Calendar | None = None
    """A date field's calendar (the one its values are written, filtered and faceted in)."""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_field_option(option: str) -> tuple[str, FieldSpec]:
    """``NAME=TYPE`` or ``NAME=date:CALENDAR`` (``index build --field``)."""
    name, sep, kind = option.partition("=")
    kind, _, calendar = kind.strip().partition(":")
    name = name.strip()
    if not sep or not name:
        raise FieldError(f"--field {option!r}: write NAME=TYPE (types: {', '.join(get_args(FieldType))})")
    if kind not in get_args(FieldType):
        raise FieldError(f"--field {option!r}: unknown type {kind!r} (types: {', '.join(get_args(FieldType))})")
    if calendar and (kind != "date" or calendar not in CALENDARS):
        raise FieldError(f"--field {option!r}: a calendar goes with a date field: date:ethiopian or date:gregorian")
    if name in RESERVED:
        raise FieldError(f"--field {option!r}: {name} is not a metadata field (id, title and text are the document)")
    return name, FieldSpec(kind, (calendar or "gregorian") if kind == "date" else None)


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and math.isnan(value))


def _norm(value) -> str:
    return unicodedata.normalize("NFC", str(value)).strip()


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _valid_dates(values: list, calendar: Calendar) -> bool:
    try:
        for v in values:
            parse_date(v, calendar)
    except DateError:
        return False
    return True


def infer_type(name: str, values: list) -> FieldSpec:
    """The type of a field from its (non-missing) values: numbers -> number; ``YYYY-MM-DD`` -> date
    (Ethiopian when the name says so, ``*ethiopian*``, ``*_ec`` or a name in Ethiopic such as ``ቀን``, or
    when only that calendar fits);
    short strings repeated across documents -> keyword; else text."""
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return FieldSpec("number")
    strings = [_norm(v) for v in values]
    if strings and all(_NUMBER.match(s) for s in strings):  # a CSV's numbers
        return FieldSpec("number")
    if strings and all(_FULL_DATE.match(s) for s in strings):
        lowered = name.lower()
        ethiopic_name = any("\u1200" <= c <= "\u139f" or "\u2d80" <= c <= "\u2ddf" for c in name)
        if ("ethiop" in lowered or lowered.endswith("_ec") or ethiopic_name) and _valid_dates(strings, "ethiopian"):
            return FieldSpec("date", "ethiopian")
        for calendar in ("gregorian", "ethiopian"):
            if _valid_dates(strings, calendar):
                return FieldSpec("date", calendar)
    if strings and all(len(s) <= KEYWORD_MAX_CHARS for s in strings) and len(set(strings)) <= max(20, len(strings) // 2):
        return FieldSpec("keyword")
    return FieldSpec("text")


def infer_fields(records: Sequence[dict], overrides: dict[str, FieldSpec] | None = None) -> dict[str, FieldSpec]:
    """A spec for every field of ``records`` (each document's metadata), ``overrides`` winning."""
    overrides = dict(overrides or {})
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(k for k in r if k not in RESERVED))
    unknown = set(overrides) - set(names)
    if unknown:
        raise FieldError(f"--field: no document has the field(s) {', '.join(sorted(unknown))} "
                         f"(fields: {', '.join(names) or 'none'})")
    specs = {}
    for name in names:
        if name in overrides:
            specs[name] = overrides[name]
        else:
            values = [r[name] for r in records if name in r and not _missing(r[name])]
            if any(isinstance(v, (list, dict)) for v in values):
                specs[name] = FieldSpec("text")
            else:
                specs[name] = infer_type(name, values)
    return specs


def write_fields(directory: str | Path, records: Sequence[dict], specs: dict[str, FieldSpec]) -> dict:
    """Write the fields of ``records`` (one per document row) into ``directory`` (``fields/`` of an
    index directory); returns the manifest's ``fields`` entry. A value that does not fit its type
    (a date that does not exist, a word in a number field) is a :class:`FieldError`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = {}
    for number, (name, spec) in enumerate(specs.items()):
        entry = {**spec.to_dict(), "file": f"{number:03d}"}
        stem = entry["file"]
        if spec.type == "keyword":
            values = [None if _missing(r.get(name)) else _norm(r[name]) for r in records]
            vocab = sorted({v for v in values if v is not None})
            code = {v: i for i, v in enumerate(vocab)}
            np.save(directory / f"{stem}.npy", np.array([-1 if v is None else code[v] for v in values], dtype=np.int32))
            (directory / f"{stem}.values.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            entry["values"] = len(vocab)
        elif spec.type == "number":
            out = np.full(len(records), np.nan)
            for i, r in enumerate(records):
                if not _missing(r.get(name)):
                    try:
                        out[i] = float(r[name])
                    except (TypeError, ValueError):
                        raise FieldError(f"field {name} is a number field but document row {i} has {r[name]!r}") from None
            np.save(directory / f"{stem}.npy", out)
        elif spec.type == "date":
            out = np.zeros(len(records), dtype=np.int32)
            for i, r in enumerate(records):
                if not _missing(r.get(name)):
                    try:
                        out[i] = parse_date(_norm(r[name]), spec.calendar)
                    except DateError as exc:
                        raise FieldError(f"field {name} ({spec.calendar} date), document row {i}: {exc}") from None
            np.save(directory / f"{stem}.npy", out)
            year = np.where(out != MISSING_DAY, years(out, spec.calendar), 0).astype(np.int16)
            np.save(directory / f"{stem}.year.npy", year)
            dated = out[out != MISSING_DAY]
            if dated.size:
                entry["range"] = [iso(int(dated.min()), spec.calendar), iso(int(dated.max()), spec.calendar)]
        info[name] = entry
    (directory / FIELDS_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return info


def slice_fields(source: str | Path, target: str | Path, start: int, stop: int) -> None:
    """The document rows ``start:stop`` of a ``fields/`` folder (a shard's), vocabularies kept whole."""
    import shutil

    source, target = Path(source), Path(target)
    if not (source / FIELDS_FILE).is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.suffix == ".npy":
            np.save(target / path.name, np.load(path)[start:stop])
        else:
            shutil.copyfile(path, target / path.name)


def read_metadata(path: str | Path, *, id_field: str = "id") -> dict[str, dict]:
    """A metadata file (JSONL, or CSV/TSV with a header) as id -> its other fields, for
    ``index build --metadata`` to join to the corpus by id; a bad file is a :class:`FieldError`."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise FieldError(f"metadata file {path} not found")
    text = path.read_text(encoding="utf-8-sig")
    out: dict[str, dict] = {}
    if path.suffix.lower() in (".csv", ".tsv"):
        rows = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        records = ((rows.line_num, r) for r in rows)
    else:
        def parsed():
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise FieldError(f"{path}:{number}: not JSON ({exc})") from None
                    if not isinstance(record, dict):
                        raise FieldError(f"{path}:{number}: expected a JSON object")
                    yield number, record
        records = parsed()
    for number, record in records:
        if record.get(id_field) in (None, ""):
            raise FieldError(f"{path}:{number}: no {id_field!r} (the id that joins it to the corpus)")
        out[str(record[id_field])] = {k: v for k, v in record.items() if k != id_field}
    return out


class FieldSet:
    """The fields of an index directory, read (memory-mapped) for filters, facets and display.

    ``specs``: name -> :class:`FieldSpec`; empty for an index without fields (built before them).
    """

    def __init__(self, directory: Path | None, specs: dict[str, FieldSpec], files: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.specs = specs
        self.files = files or {}
        """Field name -> its files' stem in ``fields/``."""
        self._arrays: dict[str, np.ndarray] = {}
        self._vocab: dict[str, list[str]] = {}

    @classmethod
    def load(cls, index_directory: str | Path) -> "FieldSet":
        directory = Path(index_directory) / FIELDS_DIR
        path = directory / FIELDS_FILE
        if not path.is_file():
            return cls(None, {})
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            fields = cls(directory, {name: FieldSpec(e["type"], e.get("calendar")) for name, e in info.items()},
                         {name: e["file"] for name, e in info.items()})
            # every file opened now: a reader keeps working even if a rebuild replaces the directory
            for name, spec in fields.specs.items():
                if spec.type != "text":
                    fields.array(name)
                if spec.type == "keyword":
                    fields.vocabulary(name)
                elif spec.type == "date":
                    fields.array(name, "year")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            from .manifest import IndexFormatError

            raise IndexFormatError(f"{index_directory}: its fields cannot be read ({type(exc).__name__}: {exc}); "
                                   "rebuild the index") from None
        return fields

    @classmethod
    def concat(cls, parts: Sequence["FieldSet"], lengths: Sequence[int]) -> "FieldSet":
        """The fields of parts laid end to end (a segmented index's base and segments, in row order),
        held in memory: keyword codes renumbered into one vocabulary, a field a part lacks missing
        there (``lengths``: each part's documents). A field's type is the first part's that has it."""
        specs: dict[str, FieldSpec] = {}
        for part in parts:
            for name, spec in part.specs.items():
                specs.setdefault(name, spec)
        out = cls(None, specs, {name: f"{i:03d}" for i, name in enumerate(specs)})
        for name, spec in specs.items():
            stem = out.files[name]
            if spec.type == "text":
                continue
            if spec.type == "keyword":
                vocab = sorted({v for p in parts if name in p.specs for v in p.vocabulary(name)})
                code = {v: i for i, v in enumerate(vocab)}
                chunks = []
                for part, n in zip(parts, lengths):
                    if name in part.specs and part.specs[name].type == "keyword":
                        remap = np.array([code[v] for v in part.vocabulary(name)] + [-1], dtype=np.int32)
                        chunks.append(remap[np.asarray(part.array(name), dtype=np.int64)])  # -1 (missing) -> last = -1
                    else:
                        chunks.append(np.full(n, -1, dtype=np.int32))
                out._vocab[name] = vocab
                out._arrays[stem] = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
            else:
                same = [name in p.specs and p.specs[name] == spec for p in parts]
                fill, dtype = (np.nan, np.float64) if spec.type == "number" else (MISSING_DAY, np.int32)
                out._arrays[stem] = np.concatenate([np.asarray(p.array(name), dtype=dtype) if ok else np.full(n, fill, dtype)
                                                    for p, n, ok in zip(parts, lengths, same)])
                if spec.type == "date":
                    out._arrays[f"{stem}.year"] = np.concatenate(
                        [np.asarray(p.array(name, "year"), dtype=np.int16) if ok else np.zeros(n, np.int16)
                         for p, n, ok in zip(parts, lengths, same)])
        return out

    def __bool__(self) -> bool:
        return bool(self.specs)

    def array(self, name: str, kind: str = "") -> np.ndarray:
        """A field's per-document array (``kind="year"``: a date field's years)."""
        key = f"{self.files[name]}.{kind}" if kind else self.files[name]
        if key not in self._arrays:
            self._arrays[key] = np.load(self.directory / f"{key}.npy", mmap_mode="r")
        return self._arrays[key]

    def vocabulary(self, name: str) -> list[str]:
        if name not in self._vocab:
            self._vocab[name] = json.loads((self.directory / f"{self.files[name]}.values.json").read_text(encoding="utf-8"))
        return self._vocab[name]

    def of_type(self, *types: FieldType) -> list[str]:
        return [n for n, s in self.specs.items() if s.type in types]

    def display(self, doc_row: int) -> dict:
        """A document's field values: keyword text, number, date as ``YYYY-MM-DD`` in its calendar
        (text fields are in the store's metadata). Missing values are left out."""
        out = {}
        for name, spec in self.specs.items():
            if spec.type == "keyword":
                code = int(self.array(name)[doc_row])
                if code >= 0:
                    out[name] = self.vocabulary(name)[code]
            elif spec.type == "number":
                value = float(self.array(name)[doc_row])
                if not math.isnan(value):
                    out[name] = int(value) if value.is_integer() else value
            elif spec.type == "date":
                day = int(self.array(name)[doc_row])
                if day != MISSING_DAY:
                    out[name] = iso(day, spec.calendar)
        return out

    def day(self, name: str, doc_row: int) -> int | None:
        value = int(self.array(name)[doc_row])
        return None if value == MISSING_DAY else value


__all__ = ["FieldError", "FieldSet", "FieldSpec", "FieldType", "infer_fields", "parse_field_option", "slice_fields",
           "write_fields", "from_day"]
