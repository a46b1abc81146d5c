"""Search a sharded index (:mod:`index.shard`): each query fans out to the shards, the answers merge.

A shard answers the first stage for its own documents (its best ``depth`` documents by BM25, its best
``depth`` by the query vector) and hands out its passages and documents; the
:class:`ShardedSearcher` merges the answers by score, then fuses, reranks (once, after the merge) and
builds the results as :class:`~search.searcher.Searcher` does. Because a shard's BM25 scores are the
whole index's, the merged lists, and so every response, equal the unsharded index's.

Shards are opened in this process (:class:`LocalShard`, a thread each per query) or reached through
a client (on Ray Serve: :mod:`search.ray_serve`); anything with the :class:`Shard` methods will do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from index.build import DENSE_FILE, DOC_OFFSETS_FILE
from index.manifest import IndexFormatError
from index.store import Passage

from .searcher import Searcher, damaged, load_vectors


class Shard(Protocol):
    """What a shard answers; rows are the shard's own (from 0)."""

    def lexical(self, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]: ...

    def dense(self, qvec: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]: ...

    def passages(self, rows: Sequence[int]) -> list[Passage]: ...

    def document(self, doc_id: str) -> dict | None: ...


class LocalShard:
    """A shard directory opened in this process (no models: queries arrive analyzed or encoded).

    Example::

        shard = LocalShard("indexes/enh-4/shard-000")
        rows, scores = shard.lexical(["ቡና"], 10)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.index = Searcher.load(self.directory, reranker=None, use_dense=False)
        built = self.index.manifest.get("dense")
        if built and (self.directory / DENSE_FILE).is_file():
            self.index.dense = load_vectors(self.directory, self.index.manifest)

    def lexical(self, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.lexical(list(terms), depth)

    def dense(self, qvec: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index.dense is None:
            raise IndexFormatError(f"{self.directory}: this shard has no embeddings")
        return self.index.dense_search(np.asarray(qvec, dtype=np.float32), depth)

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return self.index.store.passages(rows)

    def document(self, doc_id: str) -> dict | None:
        return self.index.store.document(doc_id)

    def doc_ids(self) -> list[str]:
        return self.index.store.doc_ids()


def open_shards(directory: Path, manifest: dict, *, client: Callable[[Path, dict], Shard] | None = None) -> list[Shard]:
    """The shards of the sharded index at ``directory``: ``client(shard_directory, entry)`` for each
    entry of the manifest's ``shards`` (default: :class:`LocalShard`)."""
    shards = []
    for entry in manifest["shards"]:
        path = directory / entry["path"]
        if client is None and not path.is_dir():
            raise IndexFormatError(f"{directory}: shard {entry['path']} is missing; split or build the index again")
        shards.append(client(path, entry) if client else LocalShard(path))
    return shards


class ShardedStore:
    """The passages and documents of all shards, by collection-wide row (what the searcher's store does)."""

    def __init__(self, shards: list[Shard], entries: list[dict]) -> None:
        self.shards = shards
        self.first_passage = np.array([e["first_passage"] for e in entries], dtype=np.int64)
        self.num_docs = sum(int(e["documents"]) for e in entries)
        self.num_passages = sum(int(e["passages"]) for e in entries)

    def shard_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.first_passage, np.asarray(rows, dtype=np.int64), side="right") - 1

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        rows = np.asarray([int(r) for r in rows], dtype=np.int64)
        if rows.size == 0:
            return []
        owner = self.shard_of(rows)
        found: dict[int, Passage] = {}
        for s in np.unique(owner).tolist():
            mine = rows[owner == s]
            base = int(self.first_passage[s])
            for p in self.shards[s].passages((mine - base).tolist()):
                found[p.row + base] = Passage(p.row + base, p.passage_id, p.doc_id, p.title, p.chunk, p.start, p.text)
        return [found[int(r)] for r in rows]

    def document(self, doc_id: str) -> dict | None:
        for shard in self.shards:
            doc = shard.document(doc_id)
            if doc is not None:
                return doc
        return None

    def doc_ids(self) -> list[str]:
        return [d for shard in self.shards for d in shard.doc_ids()]


class ShardedSearcher(Searcher):
    """A :class:`~search.searcher.Searcher` over a sharded index: same methods, same responses.

    Made by :meth:`Searcher.load <search.searcher.Searcher.load>` for a sharded index directory.
    The query is analyzed and encoded once, here; the shards search in parallel.
    """

    def __init__(self, directory: Path, manifest: dict, analyzer, shards: list[Shard], encoder, reranker,
                 warnings: list[str]) -> None:
        try:
            doc_offsets = np.load(directory / DOC_OFFSETS_FILE, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise damaged(directory, exc) from None
        store = ShardedStore(shards, manifest["shards"])
        super().__init__(directory, manifest, analyzer, None, None, doc_offsets, store, None, encoder, reranker, warnings)
        self.shards = shards
        self._pool = ThreadPoolExecutor(max_workers=min(len(shards), 32), thread_name_prefix="shard")

    @property
    def has_dense(self) -> bool:
        return self.encoder is not None and bool(self.manifest.get("dense"))

    def adopt_encoder(self, other: Searcher) -> None:
        self.encoder, self._encode_lock = other.encoder, other._encode_lock

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def _fan_out(self, ask: Callable[[Shard], tuple[np.ndarray, np.ndarray]], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Each shard's best ``depth`` documents (passage rows, scores) merged into the best ``depth``,
        by score, ties by document order (as one index breaks them)."""
        answers = list(self._pool.map(ask, self.shards))
        rows = np.concatenate([np.asarray(r, dtype=np.int64) + base
                               for (r, _), base in zip(answers, self.store.first_passage.tolist())])
        scores = np.concatenate([np.asarray(s, dtype=np.float32) for _, s in answers])
        order = np.lexsort((self.document_of(rows), -scores))[:depth]
        return rows[order], scores[order]

    def lexical(self, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        return self._fan_out(lambda shard: shard.lexical(terms, depth), depth)

    def dense_search(self, qvec: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        return self._fan_out(lambda shard: shard.dense(qvec, depth), depth)
