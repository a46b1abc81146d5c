"""The indexes a UI can offer: discovery, the sample index built on first use, uploads."""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from index.build import BuildReport, build_index
from index.manifest import MANIFEST
from index.models import DEFAULT_DENSE_MODEL
from index.readers import CorpusError

from . import paths

SAMPLE_CORPUS = paths.sample_dir() / "corpus.jsonl"
SAMPLE_QUERIES = paths.sample_dir() / "queries.jsonl"
DEFAULT_INDEX_ROOT = paths.default_index_root()  # $AMHARIC_SEARCH_INDEX_ROOT overrides it (app.py)
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
UPLOAD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".md")


def find_indexes(root: Path) -> list[Path]:
    """Index directories directly under ``root`` (those with a manifest), by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def sample_examples(limit: int = 8) -> list[str]:
    with open(SAMPLE_QUERIES, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()][:limit]


def ensure_sample_index(
    out: Path, *, dense_model: str | None = DEFAULT_DENSE_MODEL, on_progress: Callable[[str, float], None] | None = None
) -> list[str]:
    """Build the sample index at ``out`` unless it exists; returns notes for the user.

    Without the dense model (offline, not cached) the index is built lexical-only and the
    note says so.
    """
    if (out / MANIFEST).is_file():
        return []
    report = build_index(SAMPLE_CORPUS, out, dense_model=dense_model, name="sample", examples=sample_examples(),
                         show_progress=False, on_progress=on_progress)
    return report.notes


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
    on_progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Index uploaded files: one JSONL/CSV/TSV file, or any number of .txt/.md files."""
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
    out = index_root / safe_name(index_name, fallback="uploaded")
    index_root.mkdir(parents=True, exist_ok=True)
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
        return build_index(corpus, out, dense_model=dense_model, skip_bad=skip_bad, name=out.name,
                           show_progress=False, on_progress=on_progress)
