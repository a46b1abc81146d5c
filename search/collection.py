"""Opening an index directory for searching: the one function that knows every kind of index.

A plain index is a :class:`~search.local.LocalIndex`; a sharded one (:mod:`index.shard`) a
:class:`~search.shards.ShardedIndex` over its shards; one that took changes (:mod:`index.update`) a
:class:`~search.segments.SegmentedIndex` over its parts (the built index or its shards, and segments). Both answer the same first-stage lookups
(``lexical``, ``dense``, ``passages``, ``document``, ``document_of``), so the searcher never asks
which it has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from .local import LocalIndex
from .segments import SegmentedIndex, open_part
from .shards import Shard, ShardedIndex, open_shards

Collection = Union[LocalIndex, ShardedIndex, SegmentedIndex]


def open_collection(directory: str | Path, manifest: dict, *, vectors: bool = False,
                    shard_client: Callable[[Path, dict], Shard] | None = None) -> Collection:
    """The index at ``directory`` (its manifest already read), with its passage vectors when
    ``vectors``; a sharded index's shards are opened here or reached through ``shard_client``."""
    directory = Path(directory)
    if manifest.get("segments"):
        # a changed index's parts are opened here (BM25 needs every part's counts with the live statistics)
        return SegmentedIndex(directory, manifest, vectors=vectors)
    if manifest.get("shards"):
        return ShardedIndex(directory, manifest, open_shards(directory, manifest, client=shard_client))
    index = open_part(directory, manifest)  # shared with the segmented index the first change makes of it
    if vectors and index.vectors is None:
        index.load_vectors()
    return index
