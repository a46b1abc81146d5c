"""An (unsharded) index directory opened for searching: BM25 over documents and passages, the
passage vectors, the store, and the first-stage lookups over them.

A :class:`~search.shards.ShardedIndex` answers the same methods by fanning out to its shards; the
:class:`~search.searcher.Searcher` works with either (:func:`search.collection.open_collection`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..index.bm25 import BM25Index
from ..index.dense import DenseIndex
from ..index.fields import FieldSet
from ..index.layout import BM25_DIR, BM25_DOCS_DIR, DENSE_FILE, DOC_OFFSETS_FILE, STORE_FILE
from ..index.manifest import IndexFormatError
from ..index.store import Passage, Store

PASSAGES_PER_DOCUMENT = 3
"""Dense search asks FAISS for this many passages per wanted document (more if documents repeat)."""


def damaged(directory: Path, exc: Exception) -> IndexFormatError:
    """The one message for an index whose files cannot be read."""
    return IndexFormatError(f"{directory}: damaged index ({type(exc).__name__}: {exc}); rebuild it")


def load_vectors(directory: Path, manifest: dict) -> DenseIndex:
    """The FAISS index of an (unsharded) index directory, as its manifest describes it."""
    return DenseIndex.load(directory / DENSE_FILE, (manifest.get("dense") or {}).get("faiss"))


def document_of(doc_offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Document index of each passage row."""
    return np.searchsorted(doc_offsets, np.asarray(rows), side="right") - 1


def part_of(first_passage: np.ndarray, rows) -> np.ndarray:
    """Which part (shard, segment) holds each collection-wide passage row, given each part's first row."""
    return np.searchsorted(first_passage, np.asarray(rows, dtype=np.int64), side="right") - 1


def passages_of_parts(parts: Sequence, first_passage: np.ndarray, rows: Sequence[int]) -> list[Passage]:
    """Passages of collection-wide ``rows`` from the parts that hold them (each asked once), in the order
    asked, their rows collection-wide: a sharded or segmented index's :meth:`LocalIndex.passages`."""
    rows = np.asarray([int(r) for r in rows], dtype=np.int64)
    if rows.size == 0:
        return []
    owner = part_of(first_passage, rows)
    found: dict[int, Passage] = {}
    for i in np.unique(owner).tolist():
        base = int(first_passage[i])
        for p in parts[i].passages((rows[owner == i] - base).tolist()):
            found[p.row + base] = Passage(p.row + base, p.passage_id, p.doc_id, p.title, p.chunk, p.start, p.text)
    return [found[int(r)] for r in rows]


class LocalIndex:
    """The lexical parts, the store and (with ``vectors``) the passage vectors of one index directory.

    Example::

        index = LocalIndex("indexes/sample", read_manifest("indexes/sample"))
        rows, scores = index.lexical(["ቡና"], 10)
    """

    def __init__(self, directory: str | Path, manifest: dict, *, vectors: bool = False) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        try:
            self.bm25 = BM25Index.load(self.directory / BM25_DIR)
            self.bm25_docs = BM25Index.load(self.directory / BM25_DOCS_DIR)
            self.doc_offsets = np.load(self.directory / DOC_OFFSETS_FILE, mmap_mode="r")
            self.store = Store(self.directory / STORE_FILE)
            self.fields = FieldSet.load(self.directory)
        except Exception as exc:  # noqa: BLE001 - damaged files become one clear message
            raise damaged(self.directory, exc) from None
        self.vectors: DenseIndex | None = None
        if vectors:
            self.load_vectors()

    def load_vectors(self) -> None:
        """Read the passage vectors (an index built with an encoder)."""
        self.vectors = load_vectors(self.directory, self.manifest)

    @property
    def has_vectors(self) -> bool:
        return self.vectors is not None

    @property
    def num_docs(self) -> int:
        return self.store.num_docs

    @property
    def num_passages(self) -> int:
        return self.store.num_passages

    def document_of(self, rows: np.ndarray) -> np.ndarray:
        return document_of(self.doc_offsets, rows)

    def lexical(self, terms: list[str], depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 over whole documents; each document is represented by its best passage.

        Returns passage rows and their documents' scores, best document first. ``allow``: a boolean
        per passage row; only documents with an allowed passage, masked before the top ``depth``.
        """
        doc_allow = None
        if allow is not None:
            offsets = np.asarray(self.doc_offsets, dtype=np.int64)
            doc_allow = np.logical_or.reduceat(np.asarray(allow, dtype=bool), offsets[:-1]) if offsets.size > 1 else \
                np.zeros(0, dtype=bool)
        doc_rows, doc_scores = self.bm25_docs.top_k(terms, depth, allow=doc_allow)
        if doc_rows.size == 0:
            return doc_rows, doc_scores
        starts = np.asarray(self.doc_offsets[doc_rows], dtype=np.int64)
        lengths = np.asarray(self.doc_offsets[doc_rows + 1], dtype=np.int64) - starts
        if np.all(lengths == 1):
            return starts, doc_scores
        # score only the passages of these documents (not the whole passage index), then take each
        # document's best one (the first on ties)
        group = np.repeat(np.arange(doc_rows.size), lengths)
        group_start = np.cumsum(lengths) - lengths  # where each document's passages begin in ``rows``
        rows = starts[group] + (np.arange(group.size) - group_start[group])
        scores = self.bm25.scores_of(terms, rows)
        if allow is not None:
            scores = np.where(np.asarray(allow)[rows], scores, -np.inf)
        order = np.lexsort((-scores, group))
        return rows[order[group_start]], doc_scores

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` documents nearest to an encoded query, each represented by its best passage.

        Returns passage rows and cosine scores, best document first (document score = best passage,
        the choice measured in BENCHMARKS.md "First stage: dense and fusion"). ``allow``: a boolean
        per passage row; FAISS searches the allowed rows only (:meth:`DenseIndex.search`).
        """
        if self.vectors is None:
            raise IndexFormatError(f"{self.directory}: this index has no embeddings")
        k = depth * PASSAGES_PER_DOCUMENT
        available = self.vectors.size if allow is None else int(np.count_nonzero(allow))
        while True:
            rows, scores = self.vectors.search(np.asarray(qvec, dtype=np.float32), k, allow=allow)
            _, first = np.unique(self.document_of(rows), return_index=True)
            if first.size >= depth or k >= available:
                keep = np.sort(first)[:depth]  # the first (best) passage of each document, in score order
                return rows[keep], scores[keep]
            k *= 4

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return self.store.passages(rows)

    def document(self, doc_id: str) -> dict | None:
        return self.store.document(doc_id)

    def doc_ids(self) -> list[str]:
        return self.store.doc_ids()

    def close(self) -> None:
        """Nothing to let go of beyond memory (a sharded index has threads)."""
