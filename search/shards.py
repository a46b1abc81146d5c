"""Search a sharded index (:mod:`index.shard`): each query fans out to the shards, the answers merge.

A shard answers the first stage for its own documents (its best ``depth`` documents by BM25, its best
``depth`` by the query vector) and hands out its passages and documents; the
:class:`ShardedIndex` merges the answers by score; the :class:`~search.searcher.Searcher` then fuses,
reranks (once, after the merge) and builds the results as for one index. Because a shard's BM25 scores are the
whole index's, the merged lists, and so every response, equal the unsharded index's.

Shards are opened in this process (:class:`LocalShard`, a thread each per query) or reached through
a client (on Ray Serve: :mod:`search.service.ray_serve`); anything with the :class:`Shard` methods will do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from ..index.fields import FieldSet
from ..index.layout import DENSE_FILE, DOC_OFFSETS_FILE
from ..index.manifest import IndexFormatError
from ..index.store import Passage

from .local import LocalIndex, damaged, document_of, part_of, passages_of_parts


class Shard(Protocol):
    """What a shard answers; rows are the shard's own (from 0)."""

    def lexical(self, terms: list[str], depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def passages(self, rows: Sequence[int]) -> list[Passage]: ...

    def document(self, doc_id: str) -> dict | None: ...


class LocalShard(LocalIndex):
    """A shard directory opened in this process (no models: queries arrive analyzed or encoded).

    Example::

        shard = LocalShard("indexes/enh-4/shard-000")
        rows, scores = shard.lexical(["ቡና"], 10)
    """

    def __init__(self, directory: str | Path) -> None:
        from ..index.manifest import read_manifest

        directory = Path(directory)
        manifest = read_manifest(directory)
        super().__init__(directory, manifest, vectors=bool(manifest.get("dense")) and (directory / DENSE_FILE).is_file())

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            raise IndexFormatError(f"{self.directory}: this shard has no embeddings")
        return super().dense(qvec, depth, allow=allow)


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


class ShardedIndex:
    """A sharded index as one :class:`~search.local.LocalIndex`: same methods, collection-wide rows.

    Made by :func:`search.collection.open_collection` for a sharded index directory. Each lookup
    asks all shards in parallel (threads) and merges their answers by score.
    """

    def __init__(self, directory: Path, manifest: dict, shards: list[Shard]) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        try:
            self.doc_offsets = np.load(self.directory / DOC_OFFSETS_FILE, mmap_mode="r")
            self.fields = FieldSet.load(self.directory)  # collection-wide (each shard has its own slice too)
        except (OSError, ValueError) as exc:
            raise damaged(self.directory, exc) from None
        entries = manifest["shards"]
        self.shards = shards
        self.first_passage = np.array([e["first_passage"] for e in entries], dtype=np.int64)
        self.num_docs = sum(int(e["documents"]) for e in entries)
        self.num_passages = sum(int(e["passages"]) for e in entries)
        self._pool = ThreadPoolExecutor(max_workers=min(len(shards), 32), thread_name_prefix="shard")

    @property
    def has_vectors(self) -> bool:
        """A sharded index's vectors are in its shards: it has them when it was built with an encoder."""
        return bool(self.manifest.get("dense"))

    def load_vectors(self) -> None:
        """The shards hold (and load) the vectors."""

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def document_of(self, rows: np.ndarray) -> np.ndarray:
        return document_of(self.doc_offsets, rows)

    def shard_of(self, rows: np.ndarray) -> np.ndarray:
        return part_of(self.first_passage, rows)

    def _fan_out(self, ask: Callable[[Shard], tuple[np.ndarray, np.ndarray]], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Each shard's best ``depth`` documents (passage rows, scores) merged into the best ``depth``,
        by score, ties by document order (as one index breaks them)."""
        answers = list(self._pool.map(ask, self.shards))
        rows = np.concatenate([np.asarray(r, dtype=np.int64) + base
                               for (r, _), base in zip(answers, self.first_passage.tolist())])
        scores = np.concatenate([np.asarray(s, dtype=np.float32) for _, s in answers])
        order = np.lexsort((self.document_of(rows), -scores))[:depth]
        return rows[order], scores[order]

    def _part(self, allow: np.ndarray | None, shard: Shard) -> dict:
        """The keyword arguments that pass a shard its slice of ``allow`` (none without a mask)."""
        if allow is None:
            return {}
        i = self.shards.index(shard)
        start = int(self.first_passage[i])
        stop = int(self.first_passage[i + 1]) if i + 1 < len(self.shards) else self.num_passages
        return {"allow": np.asarray(allow[start:stop], dtype=bool)}

    def lexical(self, terms: list[str], depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self._fan_out(lambda shard: shard.lexical(terms, depth, **self._part(allow, shard)), depth)

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self._fan_out(lambda shard: shard.dense(qvec, depth, **self._part(allow, shard)), depth)

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return passages_of_parts(self.shards, self.first_passage, rows)

    def document(self, doc_id: str) -> dict | None:
        for shard in self.shards:
            doc = shard.document(doc_id)
            if doc is not None:
                return doc
        return None

    def doc_ids(self) -> list[str]:
        return [d for shard in self.shards for d in shard.doc_ids()]
