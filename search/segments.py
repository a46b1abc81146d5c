"""Search an index that took changes (:mod:`index.update`): its parts (the built index or its shards,
then the segments added since), deleted documents skipped, BM25 with the live collection's statistics.

The parts are searched as a sharded index's shards are and their answers merged, with collection-wide
rows (the parts' rows one after the other, deleted ones included but never returned). BM25 scores are
computed at query time from each part's term counts with the statistics of the live documents of all
parts (:class:`~index.bm25.CollectionStats`), so they equal a fresh build's, to the bit. A reader
keeps the generation it opened: the parts are immutable, and a change writes new files.

The first-stage lookups take ``allow``, a boolean mask over the collection's passage rows (True: may be
returned); deleted documents are left out through the same mask.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

from ..index.bm25 import BM25Params, CollectionStats, top_rows
from ..index.fields import FieldSet
from ..index.layout import DENSE_FILE, STORE_FILE
from ..index.manifest import IndexFormatError, read_manifest
from ..index.store import Passage
from ..index.update import Part, deleted_rows, generation, parts_of

from .local import PASSAGES_PER_DOCUMENT, LocalIndex, damaged, document_of, part_of, passages_of_parts

_opened: "weakref.WeakValueDictionary[tuple, LocalIndex]" = weakref.WeakValueDictionary()
_opened_lock = threading.Lock()


def open_part(directory: Path, manifest: dict | None) -> LocalIndex:
    """An index directory (a part, or a whole unchanged index), shared with other opened generations while it is the same files (parts never change)."""
    try:
        st = (directory / STORE_FILE).stat()
    except OSError as exc:
        raise damaged(directory, exc) from None
    key = (str(directory.resolve()), st.st_dev, st.st_ino, st.st_mtime_ns)
    with _opened_lock:
        part = _opened.get(key)
        if part is None:
            part = LocalIndex(directory, manifest if manifest is not None else read_manifest(directory))
            _opened[key] = part
        return part


class SegmentedIndex:
    """An index with segments as one :class:`~search.local.LocalIndex`: same methods, collection-wide rows.

    Example::

        index = SegmentedIndex("indexes/sample", read_manifest("indexes/sample"))
        rows, scores = index.lexical(["ቡና"], 10)
    """

    def __init__(self, directory: str | Path, manifest: dict, *, vectors: bool = False) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        self.generation = generation(manifest)
        self.entries: list[Part] = parts_of(manifest)
        self.parts: list[LocalIndex] = []
        live_docs, live_passages, offsets = [], [], [np.zeros(1, dtype=np.int64)]
        first_doc, first_passage = [], []
        d0 = p0 = 0
        for entry in self.entries:
            path = self.directory / entry.path
            if not path.is_dir():
                raise IndexFormatError(f"{self.directory}: part {entry.path} is missing; the index is damaged")
            part = open_part(path, manifest if entry.path == "." else None)
            self.parts.append(part)
            gone = deleted_rows(self.directory, entry)
            offs = np.asarray(part.doc_offsets, dtype=np.int64)
            alive = np.ones(len(offs) - 1, dtype=bool)
            alive[gone] = False
            live_docs.append(alive)
            live_passages.append(np.repeat(alive, np.diff(offs)))
            offsets.append(offs[1:] + p0)
            first_doc.append(d0)
            first_passage.append(p0)
            d0, p0 = d0 + len(offs) - 1, p0 + int(offs[-1])
        self.fields = FieldSet.concat([p.fields for p in self.parts], [len(a) for a in live_docs])
        """Every part's fields, one row per document row (deleted rows included: they are masked)."""
        self.live_docs = np.concatenate(live_docs)
        self.live_passages = np.concatenate(live_passages)
        self.doc_offsets = np.concatenate(offsets)
        self.first_doc = np.array(first_doc, dtype=np.int64)
        self.first_passage = np.array(first_passage, dtype=np.int64)
        self.num_docs = int(self.live_docs.sum())
        self.num_passages = int(self.live_passages.sum())
        self.params = self.parts[0].bm25.params if self.parts else BM25Params()
        # per level (documents, passages): the live rows' number and total length, and, filled by queries,
        # each term's live document frequency and each part's posting scores (this generation's statistics)
        self._levels = {}
        for level, live in (("docs", self.live_docs), ("passages", self.live_passages)):
            lives = self._split(live, docs=level == "docs")
            indexes = [p.bm25_docs if level == "docs" else p.bm25 for p in self.parts]
            n = int(live.sum())
            total = sum(int(np.asarray(ix.lengths)[lv].sum(dtype=np.int64)) for ix, lv in zip(indexes, lives))
            self._levels[level] = {"indexes": indexes, "lives": lives, "n": n, "total": total, "df": {},
                                   "caches": [{} for _ in self.parts], "cached": 0}
        self._cache_lock = threading.Lock()
        if vectors:
            self.load_vectors()

    # -- what it has -------------------------------------------------------------------------------

    @property
    def has_vectors(self) -> bool:
        return bool(self.manifest.get("dense")) and any(p.vectors is not None for p in self.parts)

    def load_vectors(self) -> None:
        """Read the passage vectors of the parts that have them (a segment added without the encoder has none)."""
        for part in self.parts:
            if part.vectors is None and part.manifest.get("dense") and (part.directory / DENSE_FILE).is_file():
                part.load_vectors()

    def close(self) -> None:
        """The parts are shared with other generations and closed when none holds them."""

    def document_of(self, rows: np.ndarray) -> np.ndarray:
        return document_of(self.doc_offsets, rows)

    def _part_of_rows(self, rows: np.ndarray) -> np.ndarray:
        return part_of(self.first_passage, rows)

    def _allowed(self, allow: np.ndarray | None) -> np.ndarray:
        if allow is None:
            return self.live_passages
        allow = np.asarray(allow, dtype=bool)
        if allow.shape != self.live_passages.shape:
            raise ValueError(f"allow has {allow.shape[0]:,} rows, the collection {self.live_passages.shape[0]:,} passages")
        return allow & self.live_passages

    # -- first stage -------------------------------------------------------------------------------

    CACHE_FLOATS = 8_000_000
    """Posting scores kept per level (about 64 MB with their rows); the cache starts afresh above it."""

    def _stats(self, level: str, terms: list[str]) -> CollectionStats:
        lv = self._levels[level]
        df = lv["df"]
        for term in dict.fromkeys(terms):
            if term not in df:
                count = 0
                for index, live in zip(lv["indexes"], lv["lives"]):
                    rows, _ = index.postings(term)
                    count += int(live[rows].sum())
                df[term] = count
        return CollectionStats.make(lv["n"], lv["total"], {t: df[t] for t in terms}, self.params)

    def _scores(self, level: str, i: int, terms: list[str], stats: CollectionStats,
                rows: np.ndarray | None = None) -> np.ndarray:
        lv = self._levels[level]
        with self._cache_lock:
            if lv["cached"] > self.CACHE_FLOATS:
                lv["caches"], lv["cached"] = [{} for _ in self.parts], 0
            cache = lv["caches"][i]
        before = len(cache)
        out = lv["indexes"][i].scores_with(terms, stats, rows, cache=cache)
        if len(cache) != before:
            lv["cached"] += sum(int(cache[t][0].size) for t in dict.fromkeys(terms) if t in cache)
        return out

    def lexical(self, terms: list[str], depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 over whole live documents (with the live collection's statistics), each represented by
        its best allowed passage; passage rows and document scores, best first (as LocalIndex.lexical)."""
        passages_ok = self._allowed(allow)
        starts = self.doc_offsets[:-1]
        counts = np.diff(self.doc_offsets)
        docs_ok = self.live_docs.copy()
        if allow is not None:
            has = counts > 0
            docs_ok[has] &= np.logical_or.reduceat(passages_ok, starts[has])
        doc_stats = self._stats("docs", terms)
        scores = (np.concatenate([self._scores("docs", i, terms, doc_stats) for i in range(len(self.parts))])
                  if self.parts else np.zeros(0, np.float32))
        scores[~docs_ok] = 0
        top = top_rows(scores, depth)
        doc_scores = scores[top].astype(np.float32)
        if top.size == 0:
            return top.astype(np.int64), doc_scores
        first, lengths = starts[top], counts[top]
        if np.all(lengths == 1):
            return first.astype(np.int64), doc_scores
        group = np.repeat(np.arange(top.size), lengths)
        group_start = np.cumsum(lengths) - lengths
        rows = first[group] + (np.arange(group.size) - group_start[group])
        pass_stats = self._stats("passages", terms)
        pscores = np.empty(rows.size, dtype=np.float32)
        owner = self._part_of_rows(rows)
        for i in np.unique(owner).tolist():
            mine = owner == i
            pscores[mine] = self._scores("passages", i, terms, pass_stats, rows[mine] - self.first_passage[i])
        pscores[~passages_ok[rows]] = -np.inf
        order = np.lexsort((-pscores, group))
        return rows[order[group_start]].astype(np.int64), doc_scores

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` live (and allowed) documents nearest to an encoded query, each by its best passage."""
        if not self.has_vectors:
            raise IndexFormatError(f"{self.directory}: this index has no embeddings")
        passages_ok = self._allowed(allow)
        found_rows, found_scores = [], []
        for i, part in enumerate(self.parts):
            if part.vectors is None:
                continue
            p0 = int(self.first_passage[i])
            mask = passages_ok[p0 : p0 + part.vectors.size]
            k = depth * PASSAGES_PER_DOCUMENT
            while True:
                rows, scores = part.vectors.search(qvec, k, allow=mask)
                _, first = np.unique(part.document_of(rows), return_index=True)
                if first.size >= depth or k >= int(mask.sum()):
                    keep = np.sort(first)[:depth]
                    break
                k *= 4
            found_rows.append(rows[keep] + p0)
            found_scores.append(scores[keep])
        if not found_rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        rows = np.concatenate(found_rows).astype(np.int64)
        scores = np.concatenate(found_scores).astype(np.float32)
        order = np.lexsort((self.document_of(rows), -scores))[:depth]
        return rows[order], scores[order]

    def _split(self, mask: np.ndarray, *, docs: bool) -> list[np.ndarray]:
        bounds = self.first_doc if docs else self.first_passage
        return np.split(mask, bounds[1:].tolist())

    # -- passages and documents --------------------------------------------------------------------

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return passages_of_parts(self.parts, self.first_passage, rows)

    def document(self, doc_id: str) -> dict | None:
        for i in range(len(self.parts) - 1, -1, -1):  # a replaced document's newest copy is in the last part
            row = self.parts[i].store.rows_of([doc_id]).get(doc_id)
            if row is not None and self.live_docs[self.first_doc[i] + row]:
                return self.parts[i].document(doc_id)
        return None

    def doc_ids(self) -> list[str]:
        """Document ids by collection-wide document number (what :meth:`document_of` gives), deleted
        and replaced documents' included: a lookup never returns them."""
        return [d for part in self.parts for d in part.doc_ids()]

    def live_doc_ids(self) -> list[str]:
        """The live documents' ids in collection order."""
        return [d for d, alive in zip(self.doc_ids(), self.live_docs.tolist()) if alive]
