"""Split an index into shards: K self-contained indexes of consecutive documents, one directory above.

A sharded index directory holds ``manifest.json`` (the whole index's manifest, plus ``shards`` and
``collection``), the collection's ``doc_offsets.npy`` and one ordinary index directory per shard
(``shard-000`` ...), each searchable on its own (by a shard server on another machine, say).

Sharded search returns exactly what the unsharded index returns: a shard is a slice of the whole
index, so its BM25 scores are the whole index's (computed with collection-wide document frequencies
and average lengths, :meth:`~index.bm25.BM25Index.slice`) and its vectors are the whole index's; each
shard answers its best ``depth`` documents and the merge keeps the best ``depth`` of those.

Example::

    split_index("indexes/enh", "indexes/enh-4", shards=4)
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .bm25 import BM25Index
from . import atomic
from .fields import slice_fields
from .layout import BM25_DIR, BM25_DOCS_DIR, DENSE_FILE, DOC_OFFSETS_FILE, FIELDS_DIR, MAX_SHARDS, SHARD_DIR, STORE_FILE
from .dense import DenseIndex
from .manifest import read_manifest, write_manifest



class ShardError(ValueError):
    """Shards that cannot be made (more shards than documents, an index already sharded)."""


def is_sharded(manifest: dict) -> bool:
    return bool(manifest.get("shards"))


def shard_bounds(doc_offsets: np.ndarray, shards: int) -> list[tuple[int, int]]:
    """Document ranges ``[(start, stop), ...]`` of ``shards`` shards with about equal passage counts."""
    docs = len(doc_offsets) - 1
    if not 1 <= shards <= min(docs, MAX_SHARDS):
        raise ShardError(f"cannot cut {docs:,} documents into {shards} shards: at most {min(docs, MAX_SHARDS)}")
    passages = int(doc_offsets[-1])
    cuts = [0]
    for i in range(1, shards):
        cut = int(np.searchsorted(doc_offsets, passages * i / shards, side="left"))
        cuts.append(min(max(cut, cuts[-1] + 1), docs - (shards - i)))  # every shard keeps at least one document
    cuts.append(docs)
    return list(zip(cuts[:-1], cuts[1:]))


def split_index(source: str | Path, out: str | Path, *, shards: int, show_progress: bool = False) -> dict:
    """Write the index at ``source`` into ``out`` as ``shards`` shards (``out`` is replaced atomically,
    as a build replaces it; ``source`` is left as it is). Returns the new manifest.

    Example::

        manifest = split_index("indexes/sample", "indexes/sample-2", shards=2)
        [s["passages"] for s in manifest["shards"]]
    """
    source, out = Path(source), Path(out)
    manifest = read_manifest(source)
    if is_sharded(manifest):
        raise ShardError(f"{source} is already sharded ({len(manifest['shards'])} shards); split the unsharded index")
    if source.resolve() == out.resolve():
        raise ShardError("write the shards to another directory than the index they are cut from")
    atomic.check_out(out)
    doc_offsets = np.load(source / DOC_OFFSETS_FILE)
    bounds = shard_bounds(doc_offsets, shards)
    bm25 = BM25Index.load(source / BM25_DIR, mmap=False)
    bm25_docs = BM25Index.load(source / BM25_DOCS_DIR, mmap=False)
    dense_info = manifest.get("dense")
    vectors = DenseIndex.load(source / DENSE_FILE, dense_info.get("faiss")).vectors() if dense_info else None
    kind = "flat" if not dense_info or (dense_info.get("faiss") or {}).get("type", "flat") == "flat" else "auto"
    base = {k: v for k, v in manifest.items() if k not in ("files", "format_version")}
    collection = {"documents": len(doc_offsets) - 1, "passages": int(doc_offsets[-1]),
                  "statistics": "BM25 scores computed once over the whole collection (document frequencies, "
                                "average lengths); each shard keeps its rows' scores"}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.splitting-", dir=out.parent))
    try:
        listed = []
        for i, (d0, d1) in enumerate(tqdm(bounds, desc="writing shards", unit=" shards", disable=not show_progress)):
            p0, p1 = int(doc_offsets[d0]), int(doc_offsets[d1])
            name = SHARD_DIR.format(i)
            shard = tmp / name
            shard.mkdir()
            _copy_store(source / STORE_FILE, shard / STORE_FILE, (d0, d1), (p0, p1))
            (shard / BM25_DIR).mkdir()
            bm25.slice(p0, p1).save(shard / BM25_DIR)
            (shard / BM25_DOCS_DIR).mkdir()
            bm25_docs.slice(d0, d1).save(shard / BM25_DOCS_DIR)
            np.save(shard / DOC_OFFSETS_FILE, (doc_offsets[d0 : d1 + 1] - p0).astype(np.int64))
            slice_fields(source / FIELDS_DIR, shard / FIELDS_DIR, d0, d1)
            shard_dense = None
            if vectors is not None:
                index = DenseIndex.build(vectors[p0:p1], kind=kind)
                index.save(shard / DENSE_FILE)
                shard_dense = {**dense_info, "faiss": index.info}
            place = {"index": i, "count": shards, "first_document": d0, "first_passage": p0, "collection": collection}
            write_manifest(shard, {
                **base, "name": f"{base.get('name', source.name)} {name} (of {shards})",
                "corpus": {**base.get("corpus", {}), "documents": d1 - d0, "passages": p1 - p0},
                "dense": shard_dense, "shard": place,
            })
            listed.append({"path": name, "documents": d1 - d0, "passages": p1 - p0, "first_document": d0,
                           "first_passage": p0})
        np.save(tmp / DOC_OFFSETS_FILE, doc_offsets.astype(np.int64))
        slice_fields(source / FIELDS_DIR, tmp / FIELDS_DIR, 0, len(doc_offsets) - 1)  # collection-wide, for filters
        top = {**base, "shards": listed, "collection": collection}
        if dense_info:
            top["dense"] = {**dense_info, "faiss": {"type": "flat"} if kind == "flat" else {"type": "per shard"}}
        write_manifest(tmp, top)
        atomic.replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_manifest(out)


def _copy_store(source: Path, target: Path, docs: tuple[int, int], passages: tuple[int, int]) -> None:
    """The documents ``docs`` and passages ``passages`` of a store, renumbered from 0."""
    from .store import SCHEMA

    db = sqlite3.connect(str(target))
    try:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        db.execute("ATTACH DATABASE ? AS src", (str(source),))
        db.execute("INSERT INTO documents SELECT row - ?, doc_id, title, text, metadata, content_hash "
                   "FROM src.documents WHERE row >= ? AND row < ? ORDER BY row", (docs[0], *docs))
        db.execute("INSERT INTO passages SELECT row - ?, passage_id, doc_row - ?, chunk, start, text "
                   "FROM src.passages WHERE row >= ? AND row < ? ORDER BY row", (passages[0], docs[0], *passages))
        db.commit()
        db.execute("DETACH DATABASE src")
    finally:
        db.close()
