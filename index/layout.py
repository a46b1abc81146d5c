"""The layout of an index directory: the names of its files and its format version.

Build (:mod:`index.build`), shards (:mod:`index.shard`) and query time (:mod:`search`) all read the
names from here, so a directory is described in one place::

    manifest.json        what the index holds and how it was built (index.manifest)
    store.sqlite         passages and documents (index.store)
    bm25/, bm25_docs/    BM25 over passages and over whole documents (index.bm25)
    doc_offsets.npy      first passage row of each document
    dense.faiss          passage vectors (index.dense), when the index has embeddings
    fields/              per-document field values: arrays + JSON (index.fields)
    shard-000/ ...       a sharded index's shards, each an index of this layout (index.shard)
    segments/            documents added since the build (index.update): seg-000001/ ... each an
                         index of this layout, and deletes-*.npy, the deleted documents of each part;
                         the manifest's ``segments`` entry says which of them make the index now
"""

from __future__ import annotations

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STORE_FILE = "store.sqlite"
BM25_DIR = "bm25"
BM25_DOCS_DIR = "bm25_docs"
DOC_OFFSETS_FILE = "doc_offsets.npy"
DENSE_FILE = "dense.faiss"
CHECKPOINT_INFO = "checkpoint.json"
FIELDS_DIR = "fields"
FIELDS_FILE = "fields.json"
"""In ``fields/``: each field's type (and a date field's calendar); its arrays beside it (index.fields)."""
SHARD_DIR = "shard-{:03d}"
SEGMENTS_DIR = "segments"
SEGMENT_DIR = "seg-{:06d}"
DELETES_FILE = "deletes-{:06d}-{:03d}.npy"
"""A part's deleted document rows (sorted int64), written at a generation (index.update)."""
UPDATE_LOCK = ".{}.lock"
"""Beside an index directory NAME: the lock its writers take (index.update)."""
MAX_SHARDS = 1024
"""Most shards an index is written as (:mod:`index.shard`)."""


def searchable_text(title: str, text: str) -> str:
    """What BM25, the encoder and the reranker see of a passage: its document title, then the text."""
    return f"{title}\n{text}" if title else text
