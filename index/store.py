"""The passage and document store: one SQLite file, read on demand (nothing loads the corpus)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

SCHEMA = """
CREATE TABLE documents (
    row INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY,
    passage_id TEXT NOT NULL UNIQUE,
    doc_row INTEGER NOT NULL REFERENCES documents(row),
    chunk INTEGER NOT NULL,
    start INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX passages_doc ON passages(doc_row);
"""


@dataclass(frozen=True)
class Passage:
    row: int
    passage_id: str
    doc_id: str
    title: str
    chunk: int
    start: int
    text: str


class StoreWriter:
    """Writes documents and passages; rows are numbered from 0 in insertion order."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path))
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        self.num_docs = 0
        self.num_passages = 0

    def add_document(self, doc_id: str, title: str, text: str, metadata: dict, content_hash: str) -> int:
        row = self.num_docs
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            (row, doc_id, title, text, json.dumps(metadata, ensure_ascii=False, default=str), content_hash),
        )
        self.num_docs += 1
        return row

    def add_passage(self, doc_row: int, passage_id: str, chunk: int, start: int, text: str) -> int:
        row = self.num_passages
        self._db.execute("INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)", (row, passage_id, doc_row, chunk, start, text))
        self.num_passages += 1
        return row

    def close(self) -> None:
        self._db.commit()
        self._db.close()


class Store:
    """Read-only access, safe to share between threads (one connection per thread).

    Example::

        store = Store("index_dir/store.sqlite")
        store.passages([0, 5])[0].text
    """

    def __init__(self, path: str | Path) -> None:
        # One connection, opened now: a reader keeps working even if a rebuild replaces the directory.
        self._conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.num_docs = self._query("SELECT COUNT(*) FROM documents")[0][0]
        self.num_passages = self._query("SELECT COUNT(*) FROM passages")[0][0]

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """Passages by row, in the order asked."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found: dict[int, Passage] = {}
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in self._query(
                "SELECT p.row, p.passage_id, d.doc_id, d.title, p.chunk, p.start, p.text FROM passages p "
                f"JOIN documents d ON d.row = p.doc_row WHERE p.row IN ({marks})",
                part,
            ):
                found[r[0]] = Passage(*r)
        return [found[r] for r in rows]

    def document(self, doc_id: str) -> dict | None:
        found = self._query("SELECT doc_id, title, text, metadata FROM documents WHERE doc_id = ?", (doc_id,))
        if not found:
            return None
        r = found[0]
        return {"id": r[0], "title": r[1], "text": r[2], "metadata": json.loads(r[3])}

    def documents(self, *, batch: int = 1000) -> Iterator[dict]:
        """Every document (as :meth:`document` gives it), in row order, read ``batch`` at a time."""
        last = -1
        while True:
            rows = self._query("SELECT row, doc_id, title, text, metadata FROM documents WHERE row > ? ORDER BY row LIMIT ?",
                               (last, batch))
            if not rows:
                return
            for r in rows:
                yield {"id": r[1], "title": r[2], "text": r[3], "metadata": json.loads(r[4])}
            last = rows[-1][0]

    def doc_ids(self) -> list[str]:
        """Document ids in row order."""
        return [r[0] for r in self._query("SELECT doc_id FROM documents ORDER BY row")]

    def rows_of(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """Document rows of those of ``doc_ids`` this store holds."""
        found: dict[str, int] = {}
        ids = list(dict.fromkeys(doc_ids))
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found.update(self._query(f"SELECT doc_id, row FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part))
        return found

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def document_hashes(self) -> dict[str, str]:
        return dict(self._query("SELECT doc_id, content_hash FROM documents"))
