"""The indexes a UI can offer: discovery, the sample index built on first use, uploads."""

from __future__ import annotations

import csv
import json
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

from ...index.build import BuildReport, build_index
from ...index.manifest import MANIFEST, IndexFormatError, read_manifest
from ...index.models import DEFAULT_DENSE_MODEL
from ...index.readers import CorpusError, decode_bytes, read_corpus
from ...index.update import UpdateReport, add_documents

from . import paths

SAMPLE_CORPUS = paths.sample_dir() / "corpus.jsonl"
SAMPLE_QUERIES = paths.sample_dir() / "queries.jsonl"
DEFAULT_INDEX_ROOT = paths.default_index_root()  # $AMHARIC_SEARCH_INDEX_ROOT overrides it (app.py)
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
UPLOAD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".md")


def sample_examples(limit: int = 8) -> list[str]:
    with open(SAMPLE_QUERIES, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()][:limit]


def sample_needs_build(out: Path, dense_model: str | None) -> bool:
    """True when the sample index is missing, or lexical-only while the encoder is now on this machine."""
    from ...index.models import cached_model

    if not (out / MANIFEST).is_file():
        return True
    try:
        lexical_only = not read_manifest(out).get("dense")
    except IndexFormatError:
        return False
    return bool(lexical_only and dense_model and cached_model(dense_model))


def ensure_sample_index(
    out: Path, *, dense_model: str | None = DEFAULT_DENSE_MODEL, on_progress: Callable[[str, float], None] | None = None
) -> list[str]:
    """Build the sample index at ``out`` unless it exists; returns notes for the user.

    Without the dense model (offline, not cached) the index is built lexical-only and the note
    says so. A lexical-only sample index gains its embeddings as soon as the encoder is on this
    machine (in the cache or at its path): it is rebuilt with them, which takes seconds.
    """
    if not sample_needs_build(out, dense_model):
        return []
    report = build_index(SAMPLE_CORPUS, out, dense_model=dense_model, name="sample", examples=sample_examples(),
                         show_progress=False, on_progress=on_progress)
    return report.notes


def table_columns(upload: "Upload") -> list[str] | None:
    """The columns of an uploaded CSV/TSV (its header) or JSONL file (the keys of its first records);
    None for text files or a file that cannot be read (the build then reports why)."""
    name = upload.name.lower()
    try:
        text = decode_bytes(upload.data[: 1 << 20], upload.name)
    except CorpusError:
        return None
    if name.endswith((".csv", ".tsv")):
        first = text.splitlines()[0] if text.strip() else ""
        row = next(csv.reader([first], delimiter="\t" if name.endswith(".tsv") else ","), [])
        return [c.strip() for c in row if c.strip()] or None
    if name.endswith((".jsonl", ".ndjson")):
        keys: dict[str, None] = {}
        for line in text.splitlines()[:20]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                keys.update(dict.fromkeys(k for k, v in record.items() if isinstance(v, str)))
        return list(keys) or None
    return None


def safe_name(name: str, *, fallback: str = "corpus") -> str:
    """A file or index name with no path, no leading dots, only letters, digits, ``-_.``.

    >>> safe_name("../../etc/passwd"), safe_name("የእኔ ጽሑፎች.jsonl"), safe_name("..")
    ('passwd', 'የእኔ_ጽሑፎች.jsonl', 'corpus')
    """
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^\w.-]+", "_", name).strip("._")[:80]
    return name or fallback


@dataclass
class Upload:
    name: str
    data: bytes


def build_from_uploads(
    uploads: list[Upload],
    index_root: Path,
    index_name: str,
    *,
    dense_model: str | None,
    skip_bad: bool = False,
    text_field: str = "text",
    title_field: str = "title",
    on_progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Index uploaded files: one JSONL/CSV/TSV file, or any number of .txt/.md files.

    Error messages name the uploaded files, never the temporary folder they were written to.
    """
    out = index_root / safe_name(index_name, fallback="uploaded")
    with _staged(uploads) as corpus:
        index_root.mkdir(parents=True, exist_ok=True)
        return build_index(corpus, out, dense_model=dense_model, skip_bad=skip_bad, name=out.name,
                           text_field=text_field, title_field=title_field, show_progress=False,
                           on_progress=on_progress)


def add_from_uploads(
    uploads: list[Upload],
    index_dir: Path,
    *,
    skip_bad: bool = False,
    text_field: str = "text",
    title_field: str = "title",
) -> UpdateReport:
    """Add the documents of uploaded files (as :func:`build_from_uploads` reads them) to the collection
    at ``index_dir`` without a rebuild (:func:`index.update.add_documents`; an existing id is replaced)."""
    with _staged(uploads) as corpus:
        docs = list(read_corpus(corpus, text_field=text_field, title_field=title_field, skip_bad=skip_bad))
        if not docs:
            raise CorpusError("the uploaded files hold no documents")
        return add_documents(index_dir, docs)


@contextmanager
def _staged(uploads: list[Upload]) -> Iterator[Path]:
    """The uploads written to a temporary folder: the corpus path to read. Error messages name the
    uploaded files, never the temporary folder."""
    if not uploads:
        raise CorpusError("no files were uploaded")
    for up in uploads:
        if len(up.data) > MAX_UPLOAD_BYTES:
            raise CorpusError(f"{safe_name(up.name)}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        if not up.name.lower().endswith(UPLOAD_SUFFIXES):
            raise CorpusError(f"{safe_name(up.name)}: not a .jsonl, .csv, .tsv, .txt or .md file")
    texts = [u for u in uploads if u.name.lower().endswith((".txt", ".md"))]
    tables = [u for u in uploads if u not in texts]
    if tables and (texts or len(tables) > 1):
        raise CorpusError("upload one JSONL/CSV/TSV file, or any number of .txt/.md files, not a mix")
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        used: set[str] = set()
        for up in uploads:
            name = safe_name(up.name)
            while name in used:
                name = "_" + name
            used.add(name)
            (folder / name).write_bytes(up.data)
        corpus = folder / safe_name(tables[0].name) if tables else folder
        try:
            yield corpus
        except CorpusError as exc:
            message = str(exc).replace(f"{folder}/", "").replace(str(folder), "the uploaded files")
            # the page has its own controls for what the command line's options do
            message = re.sub(r" \(use --skip-bad to skip such records\)|; choose one with --text-field", "", message)
            raise CorpusError(message) from None
