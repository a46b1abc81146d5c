"""BM25 over analyzed passages: bm25s for scoring and persistence (rank-bm25 is the test reference)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

BM25Method = Literal["lucene", "robertson", "atire", "bm25l", "bm25+"]


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

    def __init__(self, model, params: BM25Params) -> None:
        self._model = model
        self.params = params
        self._vocab: dict[str, int] = model.vocab_dict

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
        return cls(model, params)

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
        k = min(k, scores.shape[0])
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        keep = scores[top] > 0
        return top[keep].astype(np.int64), scores[top][keep].astype(np.float32)

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
        return type(self)(model, self.params)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self._model.save(str(directory), show_progress=False)
        (directory / "bm25_params.json").write_text(json.dumps(self.params.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> "BM25Index":
        import bm25s

        _quiet_bm25s()
        directory = Path(directory)
        params = BM25Params(**json.loads((directory / "bm25_params.json").read_text(encoding="utf-8")))
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False, verbosity=0)
        return cls(model, params)


def _quiet_bm25s() -> None:
    logging.getLogger("bm25s").setLevel(logging.ERROR)
