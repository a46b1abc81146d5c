"""BM25 over analyzed passages: bm25s for scoring and persistence (rank-bm25 is the test reference)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

BM25Method = Literal["lucene", "robertson", "atire", "bm25l", "bm25+"]

COUNTS_FILE = "term_counts.npy"
"""Each posting's term frequency, aligned with bm25s's score matrix (same ``indices``/``indptr``)."""
LENGTHS_FILE = "lengths.npy"
"""Each row's length in analyzed terms."""
EXACT_METHODS = ("lucene", "robertson", "atire")
"""The variants :func:`score_parts` recomputes from counts (BM25L and BM25+ also score absent terms)."""


@dataclass(frozen=True)
class BM25Params:
    """BM25 parameters, chosen on 1,000 held-out enh training headlines (BENCHMARKS.md): b=0.9
    beat 0.75 for every k1 tried (long news articles need strong length normalization)."""

    k1: float = 1.2
    b: float = 0.9
    method: BM25Method = "lucene"
    delta: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


class BM25Index:
    """A BM25 index over lists of terms.

    Example::

        bm25 = BM25Index.build([["ቡና", "ምርት"], ["ጤና"]])
        ids, scores = bm25.top_k(["ቡና"], k=10)
    """

    def __init__(self, model, params: BM25Params, counts: np.ndarray | None = None,
                 lengths: np.ndarray | None = None) -> None:
        self._model = model
        self.params = params
        self._vocab: dict[str, int] = model.vocab_dict
        self.counts = counts
        """Term frequency of each posting (aligned with the score matrix); None for indexes built before."""
        self.lengths = lengths
        """Length of each row in terms; None for indexes built before."""

    @classmethod
    def build(
        cls, corpus_terms: Iterable[Sequence[str]], *, params: BM25Params = BM25Params(), show_progress: bool = False
    ) -> "BM25Index":
        import bm25s

        _quiet_bm25s()
        # bm25s keeps each term's postings sorted by passage row (CSC), which :meth:`scores_of` relies on
        # (tests/test_bm25.py checks it against full scoring)
        model = bm25s.BM25(k1=params.k1, b=params.b, delta=params.delta, method=params.method)
        vocab: dict[str, int] = {}
        # one int32 array per document, built as the (possibly streamed) analyzed texts come: a million
        # passages never hold their token strings in memory at once
        ids = [np.fromiter((vocab.setdefault(t, len(vocab)) for t in doc), dtype=np.int32) for doc in corpus_terms]
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=show_progress)
        counts, lengths = _counts(ids, model.scores)
        return cls(model, params, counts, lengths)

    @property
    def num_docs(self) -> int:
        return int(self._model.scores["num_docs"])

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def known_terms(self, terms: Sequence[str]) -> list[str]:
        return [t for t in terms if t in self._vocab]

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for the query terms (unknown terms count zero)."""
        ids = [self._vocab[t] for t in terms if t in self._vocab]
        if not ids:
            return np.zeros(self.num_docs, dtype=np.float32)
        return self._model.get_scores(ids)

    def scores_of(self, terms: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 scores of the passages ``rows`` only, equal to ``scores(terms)[rows]``.

        Finds each row in each query term's (sorted) postings by binary search, so it reads a few
        pages of a memory-mapped index instead of whole posting lists.
        """
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(rows.shape[0], dtype=np.float32)
        ids = [self._vocab[t] for t in terms if t in self._vocab]
        if not ids or rows.size == 0:
            return out
        matrix = self._model.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        for i in ids:
            start, end = int(indptr[i]), int(indptr[i + 1])
            if end == start:
                continue
            postings = indices[start:end]
            pos = np.minimum(np.searchsorted(postings, rows), end - start - 1)
            hit = np.asarray(postings[pos]) == rows
            out[hit] += np.asarray(data[start:end][pos[hit]])
        nonoccurrence = getattr(self._model, "nonoccurrence_array", None)
        if nonoccurrence is not None:
            out += nonoccurrence[ids].sum()
        return out

    def top_k(self, terms: Sequence[str], k: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``k`` passages with a positive score, best first; with
        ``allow`` (a boolean per row), among the allowed rows only (masked before the top ``k``)."""
        scores = self.scores(terms)
        if allow is not None:
            scores = np.where(allow, scores, np.float32(0))
        top = top_rows(scores, k)
        return top, scores[top].astype(np.float32)

    def slice(self, start: int, stop: int) -> "BM25Index":
        """The rows ``start:stop`` as an index of their own, keeping every score as it is: the scores
        were computed with this index's collection-wide document frequencies and average length, so a
        row scores the same in the slice as in the whole (what makes sharded search exact).

        Terms that occur in none of these rows are left out of the slice's vocabulary (they add
        nothing to its scores), except for the BM25 variants that score a term's absence."""
        import copy

        matrix = self._model.scores
        data, indices, indptr = (np.asarray(matrix[k]) for k in ("data", "indices", "indptr"))
        keep = (indices >= start) & (indices < stop)
        kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
        new_indptr = kept_before[indptr]
        vocab = self._vocab
        nonoccurrence = getattr(self._model, "nonoccurrence_array", None)
        if nonoccurrence is None:
            present = np.flatnonzero(np.diff(new_indptr))
            new_indptr = np.concatenate(([0], new_indptr[present + 1]))
            new_id = np.full(len(indptr) - 1, -1, dtype=np.int64)
            new_id[present] = np.arange(present.size)
            # (bm25s's vocabulary can hold an entry past the matrix, its empty token: it has no postings)
            vocab = {term: int(new_id[i]) for term, i in vocab.items() if i < new_id.size and new_id[i] >= 0}
        model = copy.copy(self._model)
        model.vocab_dict = vocab
        model.scores = {
            "data": data[keep], "indices": (indices[keep] - start).astype(indices.dtype),
            "indptr": new_indptr.astype(indptr.dtype), "num_docs": stop - start,
        }
        counts = None if self.counts is None else np.asarray(self.counts)[keep]
        lengths = None if self.lengths is None else np.asarray(self.lengths)[start:stop]
        return type(self)(model, self.params, counts, lengths)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self._model.save(str(directory), show_progress=False)
        (directory / "bm25_params.json").write_text(json.dumps(self.params.to_dict()), encoding="utf-8")
        if self.counts is not None and self.lengths is not None:
            np.save(directory / COUNTS_FILE, np.asarray(self.counts, dtype=np.float32))
            np.save(directory / LENGTHS_FILE, np.asarray(self.lengths, dtype=np.int64))

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> "BM25Index":
        import bm25s

        _quiet_bm25s()
        directory = Path(directory)
        params = BM25Params(**json.loads((directory / "bm25_params.json").read_text(encoding="utf-8")))
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False, verbosity=0)
        counts = lengths = None
        if (directory / COUNTS_FILE).is_file() and (directory / LENGTHS_FILE).is_file():
            counts = np.load(directory / COUNTS_FILE, mmap_mode="r" if mmap else None)
            lengths = np.load(directory / LENGTHS_FILE, mmap_mode="r" if mmap else None)
        return cls(model, params, counts, lengths)

    # -- scores with another collection's statistics (segments: :mod:`index.update`) ---------------

    @property
    def has_counts(self) -> bool:
        return self.counts is not None and self.lengths is not None

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding ``term`` (ascending) and its frequency in each."""
        i = self._vocab.get(term)
        if i is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        indptr = self._model.scores["indptr"]
        if i + 1 >= len(indptr):  # bm25s's empty token, past the matrix
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        start, end = int(indptr[i]), int(indptr[i + 1])
        return np.asarray(self._model.scores["indices"][start:end], dtype=np.int64), np.asarray(self.counts[start:end])

    def live_stats(self, terms: Sequence[str], live: np.ndarray | None) -> tuple[int, int, dict[str, int]]:
        """Over the rows where ``live`` (None: all): their number, their total length, and each
        term's document frequency."""
        lengths = np.asarray(self.lengths)
        if live is None:
            n, total = lengths.shape[0], int(lengths.sum(dtype=np.int64))
        else:
            n, total = int(live.sum()), int(lengths[live].sum(dtype=np.int64))
        df = {}
        for term in dict.fromkeys(terms):
            rows, _ = self.postings(term)
            df[term] = int(rows.size if live is None else live[rows].sum())
        return n, total, df

    def scores_with(self, terms: Sequence[str], stats: "CollectionStats", rows: np.ndarray | None = None, *,
                    cache: dict | None = None) -> np.ndarray:
        """BM25 of this index's rows (or of ``rows`` only) computed with ``stats``, the statistics of
        a larger collection this index is part of: bit for bit the scores a fresh bm25s index of that
        collection gives these rows (same formulas, dtypes and order of summation as bm25s).
        ``cache`` (a dict kept while ``stats`` hold) keeps each term's posting scores."""
        size = self.num_docs if rows is None else len(rows)
        out = np.zeros(size, dtype=np.float32)
        for term in terms:
            idf = stats.idf.get(term)
            if not idf:
                continue
            found = cache.get(term) if cache is not None else None
            if found is None:
                found = self.term_scores(term, idf, stats.avg_len)
                if cache is not None:
                    cache[term] = found
            post, part = found
            if post.size == 0:
                continue
            if rows is None:
                out[post] += part  # a term's rows are distinct: as bm25s's np.add.at
            else:
                pos = np.minimum(np.searchsorted(post, rows), post.size - 1)
                hit = post[pos] == rows
                out[np.flatnonzero(hit)] += part[pos[hit]]
        return out

    def term_scores(self, term: str, idf: np.float32, avg_len: np.float64) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding ``term`` and their BM25 for it, with this ``idf`` and average length
        (computed as bm25s computes them when it builds an index)."""
        from bm25s.scoring import _select_tfc_scorer

        post, tf = self.postings(term)
        tfc = _select_tfc_scorer(self.params.method)
        part = idf * tfc(tf_array=tf, l_d=np.asarray(self.lengths)[post], l_avg=avg_len, k1=self.params.k1,
                         b=self.params.b, delta=self.params.delta)
        return post, part.astype(np.float32)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the best ``k`` positive ``scores``, best first; equal scores in row order, also at the
    cut (so one collection cut into parts, or with rows masked out, gives the same list)."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
    rows = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores > 0)
    return rows[np.lexsort((rows, -scores[rows]))][:k].astype(np.int64)


@dataclass(frozen=True)
class CollectionStats:
    """BM25 statistics of a collection made of parts (segments, shards), over its live rows only."""

    num_docs: int
    avg_len: np.float64
    idf: dict[str, np.float32]

    @classmethod
    def of(cls, parts: Sequence[tuple[BM25Index, np.ndarray | None]], terms: Sequence[str],
           params: BM25Params) -> "CollectionStats":
        """The statistics of ``parts`` (each an index and its live rows, None: all) for ``terms``,
        computed as bm25s computes them for one index of the live rows."""
        from bm25s.scoring import _select_idf_scorer

        if params.method not in EXACT_METHODS:
            raise ValueError(f"BM25 method {params.method!r} cannot be recomputed over segments; "
                             f"use one of {', '.join(EXACT_METHODS)}")
        n = total = 0
        df: dict[str, int] = dict.fromkeys(terms, 0)
        for index, live in parts:
            pn, ptotal, pdf = index.live_stats(terms, live)
            n, total = n + pn, total + ptotal
            for term, count in pdf.items():
                df[term] += count
        return cls.make(n, total, df, params)

    @classmethod
    def make(cls, n: int, total: int, df: dict[str, int], params: BM25Params) -> "CollectionStats":
        """The statistics of ``n`` live rows of ``total`` terms, with these document frequencies."""
        from bm25s.scoring import _select_idf_scorer

        idf_of = _select_idf_scorer(params.method)
        avg = np.float64(total) / n if n else np.float64(0.0)  # as numpy's mean of the lengths
        return cls(n, avg, {t: np.float32(idf_of(d, N=n)) for t, d in df.items() if d})


def _counts(ids: list[np.ndarray], scores: dict) -> tuple[np.ndarray, np.ndarray]:
    """Term frequencies aligned with bm25s's score matrix (its postings sorted by row within each
    term), and row lengths, from the rows' term ids."""
    lengths = np.fromiter((len(d) for d in ids), dtype=np.int64, count=len(ids))
    if not ids or lengths.sum() == 0:
        return np.zeros(0, dtype=np.float32), lengths
    terms = np.concatenate(ids).astype(np.int64)
    rows = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    key = terms * len(ids) + rows  # term-major, then row: the score matrix's order
    uniq, tf = np.unique(key, return_counts=True)
    indices = np.asarray(scores["indices"])
    if uniq.size != indices.size or not np.array_equal(uniq % len(ids), indices):
        raise RuntimeError("bm25s's score matrix is not ordered by term then row; term counts cannot be aligned")
    return tf.astype(np.float32), lengths


def _quiet_bm25s() -> None:
    logging.getLogger("bm25s").setLevel(logging.ERROR)
