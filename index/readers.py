"""Corpus readers: JSONL, CSV/TSV, and folders of .txt/.md files, all yielding :class:`Document`.

Text is decoded strictly (UTF-8, or UTF-16/UTF-8 with a byte-order mark), NFC-normalized and
cleaned of invisible format characters (:func:`clean_text`).
A bad record raises :class:`CorpusError` naming the file and line, unless ``skip_bad=True``,
in which case it is counted in :attr:`ReadReport.skipped` with the reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Literal

CorpusFormat = Literal["auto", "jsonl", "csv", "tsv", "folder"]
TEXT_SUFFIXES = (".txt", ".md")


class CorpusError(ValueError):
    """A corpus that cannot be read; the message names the file and line."""


def json_problem(msg: str, doc: str, pos: int, *, line: bool = False) -> str:
    r"""What is wrong with a JSON text, where: ``json.JSONDecodeError``'s message (``msg``, which may
    end in "at") completed with the column (and the line, with ``line=True``) of ``pos`` in ``doc``.

    >>> json_problem("Invalid control character at", '{"a": "x\ty"}', 8)
    'not valid JSON: invalid control character at column 9'
    >>> json_problem("Expecting value", '{"a":\n}', 6, line=True)
    'not valid JSON: expecting value at line 2, column 1'
    """
    lineno = doc.count("\n", 0, pos) + 1
    column = pos - doc.rfind("\n", 0, pos)
    where = f"line {lineno}, column {column}" if line else f"column {column}"
    what = msg[:1].lower() + msg[1:]
    return f"not valid JSON: {what} {where}" if what.endswith(" at") else f"not valid JSON: {what} at {where}"


@dataclass
class Document:
    id: str
    text: str
    title: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class ReadReport:
    """What a read did: documents read and records skipped (with their reasons)."""

    read: int = 0
    skipped: list[str] = field(default_factory=list)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


KEPT_FORMAT_CHARACTERS = "\u200c\u200d"
"""Zero-width non-joiner and joiner: format characters that change how some scripts are written."""


@lru_cache(maxsize=1)
def _invisible() -> re.Pattern:
    """Every format character (Unicode category Cf) of this Python's Unicode version but ZWNJ/ZWJ."""
    chars = [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf" and chr(c) not in KEPT_FORMAT_CHARACTERS]
    ranges: list[list[int]] = []
    for c in chars:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return re.compile("[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                                    for a, b in ranges) + "]+")


_ZWSP_BETWEEN_WORDS = re.compile(r"(?<=\w)\u200b+(?=\w)")


def clean_text(text: str) -> str:
    """NFC text without invisible format characters: byte-order marks (U+FEFF) in the middle of
    text (concatenated files), zero-width spaces (U+200B, which become spaces), word joiners (U+2060), soft hyphens
    (U+00AD), direction marks (U+200E/U+200F) and the rest of category Cf, except ZWNJ and ZWJ
    (U+200C, U+200D). They are invisible in results but split or glue words for the analyzer.
    """
    text = nfc(text)
    stripped = _invisible().sub("", _ZWSP_BETWEEN_WORDS.sub(" ", text))  # a zero-width space still separates words
    return text if stripped == text else nfc(stripped)  # a removed mark may let two characters compose


def _clean_value(value):
    """Metadata values: strings cleaned, lists and objects cleaned inside, anything else as it is."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_value(v) for k, v in value.items()}
    return value


def decode_bytes(data: bytes, where: str) -> str:
    """Decode UTF-8 (with or without BOM) or UTF-16 with a BOM; anything else is a CorpusError."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(
            f"{where}, line {line}: not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert the file to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`"
        ) from None


def _is_binary(data: bytes) -> bool:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in data[:8192]


def detect_format(path: Path) -> CorpusFormat:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in TEXT_SUFFIXES:
        raise CorpusError(f"{path}: a single text file is not a corpus; put the files in a folder and index the folder")
    raise CorpusError(f"{path}: unknown corpus format {suffix!r}; use --format jsonl, csv, tsv or folder")


def read_corpus(
    path: str | Path,
    *,
    format: CorpusFormat = "auto",
    id_field: str = "id",
    text_field: str = "text",
    title_field: str = "title",
    skip_bad: bool = False,
    report: ReadReport | None = None,
) -> Iterator[Document]:
    """Yield the documents of a corpus file or folder.

    Example::

        for doc in read_corpus("data/sample/corpus.jsonl"):
            print(doc.id, doc.text[:40])
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder")
    fmt = detect_format(path) if format == "auto" else format
    report = report if report is not None else ReadReport()
    if fmt == "folder":
        records = _read_folder(path, skip_bad=skip_bad, report=report)
    else:
        if path.is_dir():
            raise CorpusError(f"{path}: is a folder, not a {fmt} file")
        data = path.read_bytes()
        if _is_binary(data):
            raise CorpusError(f"{path}: looks like a binary file, not {fmt} text")
        text = decode_bytes(data, str(path))
        if fmt == "jsonl":
            records = _read_jsonl(text, path, id_field, text_field, title_field, skip_bad, report)
        else:
            delimiter = "\t" if fmt == "tsv" else ","
            records = _read_csv(text, path, delimiter, id_field, text_field, title_field, skip_bad, report)
    seen: set[str] = set()
    empty = True
    for where, doc in records:
        problem = None
        if doc.id in seen:
            problem = f"duplicate document id {doc.id!r}"
        elif not doc.text.strip():
            problem = f"document {doc.id!r} has no text"
        if problem:
            if not skip_bad:
                raise CorpusError(f"{where}: {problem} (use --skip-bad to skip such records)")
            report.skipped.append(f"{where}: {problem}")
            continue
        seen.add(doc.id)
        report.read += 1
        empty = False
        yield doc
    if empty:
        raise CorpusError(f"{path}: no documents found")


def check_corpus(
    path: str | Path,
    *,
    format: CorpusFormat = "auto",
    id_field: str = "id",
    text_field: str = "text",
    title_field: str = "title",
    skip_bad: bool = False,
) -> Document:
    """The first document of a corpus, or a :class:`CorpusError` saying why there is none: a
    missing path, an unknown format, a file that does not decode, a bad first record (unless
    ``skip_bad``), no documents at all. Cheap next to loading a model: ``build_index`` calls it first.

    Example::

        check_corpus("data/sample/corpus.jsonl").id  # 'health-001'
    """
    docs = read_corpus(path, format=format, id_field=id_field, text_field=text_field, title_field=title_field,
                       skip_bad=skip_bad)
    try:
        return next(docs)  # read_corpus raises rather than ending without a document
    finally:
        docs.close()


def _bad(skip_bad: bool, report: ReadReport, message: str) -> None:
    if not skip_bad:
        raise CorpusError(message + " (use --skip-bad to skip such records)")
    report.skipped.append(message)


def _as_text(value, where: str, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise CorpusError(f"{where}: field {name!r} must be a string, not {type(value).__name__}")
    return nfc(str(value))


def _read_jsonl(text, path, id_field, text_field, title_field, skip_bad, report):
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _bad(skip_bad, report, f"{where}: {json_problem(exc.msg, exc.doc, exc.pos)}")
            continue
        if not isinstance(record, dict):
            _bad(skip_bad, report, f"{where}: expected a JSON object, got {type(record).__name__}")
            continue
        if text_field not in record:
            _bad(skip_bad, report, f"{where}: missing {text_field!r} field")
            continue
        try:
            doc_id = _as_text(record.get(id_field), where, id_field) or str(lineno)
            doc = Document(
                id=doc_id,
                text=clean_text(_as_text(record[text_field], where, text_field)),
                title=clean_text(_as_text(record.get(title_field), where, title_field)),
                metadata={k: _clean_value(v) for k, v in record.items() if k not in (id_field, text_field, title_field)},
            )
        except CorpusError as exc:
            _bad(skip_bad, report, str(exc))
            continue
        yield where, doc


def _read_csv(text, path, delimiter, id_field, text_field, title_field, skip_bad, report):
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    if text_field not in columns:
        raise CorpusError(
            f"{path}, line 1: no {text_field!r} column (columns: {', '.join(columns) or 'none'}); "
            "choose one with --text-field"
        )
    try:
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if None in row:
                _bad(skip_bad, report, f"{where}: more fields than the header has")
                continue
            doc_id = nfc(row.get(id_field) or "") or str(reader.line_num)
            meta = {k: _clean_value(v) for k, v in row.items() if k not in (id_field, text_field, title_field)}
            yield where, Document(
                id=doc_id, text=clean_text(row.get(text_field) or ""), title=clean_text(row.get(title_field) or ""),
                metadata=meta,
            )
    except csv.Error as exc:
        raise CorpusError(f"{path}, line {reader.line_num}: {exc}") from None


def _read_folder(root: Path, *, skip_bad: bool, report: ReadReport):
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for file in files:
        rel = file.relative_to(root).as_posix()
        if file.suffix.lower() not in TEXT_SUFFIXES:
            report.skipped.append(f"{file}: not a .txt or .md file")
            continue
        data = file.read_bytes()
        if _is_binary(data):
            _bad(skip_bad, report, f"{file}: looks like a binary file")
            continue
        try:
            text = clean_text(decode_bytes(data, str(file)))
        except CorpusError as exc:
            _bad(skip_bad, report, str(exc))
            continue
        yield str(file), Document(id=rel, text=text, title=clean_text(file.stem))
