"""Changes without a rebuild: add, replace and delete documents in an index; merge by ``compact``.

Designed as Lucene's near-real-time segments:

- new documents go into an immutable **segment** (``segments/seg-000001/`` ...), an index directory
  written by :func:`~index.build.build_index` itself, so a segment has every file an index has;
- a deleted (or replaced) document is **marked**: each part (the built index, or its shards, and
  each segment) has a file of its deleted document rows, rewritten under a new name at each change;
- a **commit** writes and fsyncs the new files first, then replaces ``manifest.json`` by rename: its
  ``segments`` entry (generation, parts, their delete files) is the commit point. Killed at any
  moment, the index opens as before or as after the change; a reader keeps the generation it opened;
- BM25 over a segmented index is computed with the collection's statistics over live documents
  (:class:`~index.bm25.CollectionStats`), so scores equal a fresh build's, to the bit;
- :func:`compact` writes the live documents as one index again (vectors reused) and swaps it in.

Example::

    add_documents("indexes/news", [{"id": "n1", "title": "...", "text": "..."}])
    delete_documents("indexes/news", ["n0"])
    compact("indexes/news")
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .bm25 import COUNTS_FILE, EXACT_METHODS
from .layout import (BM25_DIR, DELETES_FILE, DOC_OFFSETS_FILE, MANIFEST, SEGMENT_DIR, SEGMENTS_DIR, STORE_FILE,
                     UPDATE_LOCK)
from .manifest import IndexFormatError, read_manifest
from .readers import CorpusError, Document

CRASH_ENV = "AMHARIC_SEARCH_CRASH_AT"
"""Tests: the name of a commit stage at which the process exits at once (``os._exit``), as if killed."""
STAGES = ("segment", "deletes", "manifest-tmp", "committed")
"""The stages of a commit, in order: the segment written, the delete files written, the new manifest
written but not yet in place, the manifest in place (the change is made) before old files are removed."""
MERGE_FACTOR = 10
"""Segments of one size class (live documents, by powers of ten) merged into one when there are this many
(Lucene's log merge policy): a stream of single-document additions keeps a few dozen segments."""
KEEP_OLD_SECONDS = 60.0
"""Files of older generations are removed only after this long (a reader may be opening them)."""


class UpdateError(ValueError):
    """A change that cannot be made (an index built before segments, a bad document); the message says why."""


@dataclass
class UpdateReport:
    generation: int
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    missing: list[str] = field(default_factory=list)
    """Ids asked to be deleted that the index does not hold."""
    documents: int = 0
    """Live documents after the change."""
    passages: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Part:
    """One part of a segmented index as its manifest lists it."""

    path: str
    documents: int
    passages: int
    deletes: str | None = None
    deleted: int = 0
    deleted_passages: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _crash_point(stage: str) -> None:
    if os.environ.get(CRASH_ENV) == stage:
        os._exit(75)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            _fsync(Path(dirpath) / name)
        _fsync(Path(dirpath))
    _fsync(root.parent)


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index (a lock file beside it, so it outlives a compaction's swap)."""
    lock = index_dir.parent / UPDATE_LOCK.format(index_dir.name)
    with open(lock, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def parts_of(manifest: dict) -> list[Part]:
    """The parts of an index as they stand: its segments entry's, or the built index (or its shards) alone."""
    seg = manifest.get("segments")
    if seg:
        return [Part(**p) for p in seg["parts"]]
    if manifest.get("shards"):
        return [Part(s["path"], s["documents"], s["passages"]) for s in manifest["shards"]]
    corpus = manifest.get("corpus") or {}
    return [Part(".", int(corpus.get("documents", 0)), int(corpus.get("passages", 0)))]


def generation(manifest: dict) -> int:
    """The index's generation: 0 as built, one more at each change."""
    return int((manifest.get("segments") or {}).get("generation", 0))


def deleted_rows(index_dir: Path, part: Part) -> np.ndarray:
    """The part's deleted document rows (sorted)."""
    if not part.deletes:
        return np.empty(0, dtype=np.int64)
    return np.load(Path(index_dir) / part.deletes)


def live_documents(index_dir: str | Path, manifest: dict | None = None) -> Iterator[dict]:
    """The index's live documents in collection order (``id``, ``title``, ``text``, ``metadata``): the
    built index's, then each segment's; a fresh build of them gives the same index, scores and order."""
    from .store import Store

    index_dir = Path(index_dir)
    manifest = manifest or read_manifest(index_dir)
    for part in parts_of(manifest):
        gone = set(deleted_rows(index_dir, part).tolist())
        store = Store(index_dir / part.path / STORE_FILE)
        try:
            for row, doc in enumerate(store.documents()):
                if row not in gone:
                    yield doc
        finally:
            store.close()


def _check_updatable(index_dir: Path, manifest: dict) -> None:
    method = (manifest.get("bm25") or {}).get("method", "lucene")
    if method not in EXACT_METHODS:
        raise UpdateError(f"{index_dir}: its BM25 method {method!r} cannot take changes; build it with one of "
                          f"{', '.join(EXACT_METHODS)}")
    for part in parts_of(manifest):
        if not (index_dir / part.path / BM25_DIR / COUNTS_FILE).is_file():
            raise UpdateError(f"{index_dir}: built by an older amharic-search (no term counts); build it again once "
                              "with `amharic-search index build` to add, replace or delete documents")


def _as_document(doc: Document | dict, where: str) -> Document:
    if isinstance(doc, Document):
        found = doc
    elif isinstance(doc, dict):
        if "text" not in doc:
            raise UpdateError(f"{where}: missing 'text' field")
        meta = {k: v for k, v in doc.items() if k not in ("id", "title", "text", "metadata")}
        if isinstance(doc.get("metadata"), dict):
            meta = {**doc["metadata"], **meta}
        found = Document(id=doc.get("id"), text=doc.get("text"), title=doc.get("title") or "", metadata=meta)
    else:
        raise UpdateError(f"{where}: expected a document (an object with id, title, text), got {type(doc).__name__}")
    for name in ("id", "text", "title"):
        value = getattr(found, name)
        if not isinstance(value, str):
            raise UpdateError(f"{where}: {name!r} must be text, got {type(value).__name__}")
    if not found.id.strip():
        raise UpdateError(f"{where}: 'id' is empty; every added document needs an id")
    return found


def _field_types(manifest: dict, names: set[str]):
    """The index's field types (its manifest's ``fields``) for the fields among ``names``: a segment
    or a compacted index types its fields as the index does, not by what its own documents suggest."""
    from .fields import FieldSpec

    return {name: FieldSpec(e["type"], e.get("calendar")) for name, e in (manifest.get("fields") or {}).items()
            if name in names} or None


def _build_options(manifest: dict, dense_model: str | None) -> dict:
    """build_index's settings that make a segment's files exactly as the index's own."""
    from .analyzer import AnalyzerConfig
    from .bm25 import BM25Params
    from .chunking import ChunkConfig

    bm25 = manifest.get("bm25") or {}
    chunking = manifest.get("chunking") or {}
    dense = manifest.get("dense") or {}
    options = dict(
        analyzer=AnalyzerConfig.from_dict(manifest["analyzer"]),
        bm25=BM25Params(**{k: bm25[k] for k in ("k1", "b", "method", "delta") if k in bm25}),
        chunking=ChunkConfig(**{k: chunking[k] for k in ("max_tokens", "overlap") if k in chunking}),
        dense_model=None,
    )
    if dense and dense_model:
        options.update(dense_model=dense["model"] if dense_model == "index" else dense_model, dense_index_kind="flat",
                       dense_precision=dense.get("precision") or "auto", dense_engine=dense.get("engine") or "auto")
    return options


def _write_deletes(index_dir: Path, part: Part, rows: np.ndarray, gen: int, number: int, doc_offsets: np.ndarray) -> Part:
    rows = np.unique(np.concatenate([deleted_rows(index_dir, part), rows.astype(np.int64)]))
    name = f"{SEGMENTS_DIR}/{DELETES_FILE.format(gen, number)}"
    (index_dir / SEGMENTS_DIR).mkdir(exist_ok=True)
    path = index_dir / name
    with open(path, "wb") as f:
        np.save(f, rows)
        f.flush()
        os.fsync(f.fileno())
    gone = int((doc_offsets[rows + 1] - doc_offsets[rows]).sum()) if rows.size else 0
    return Part(part.path, part.documents, part.passages, name, int(rows.size), gone)


def _mark(index_dir: Path, parts: list[Part], ids: list[str], gen: int, first_number: int = 0) -> tuple[list[Part], set[str]]:
    """Mark the live documents with ``ids`` deleted in ``parts``; returns the new parts and the ids found."""
    from .store import Store

    found: set[str] = set()
    out = []
    number = first_number
    for part in parts:
        store = Store(index_dir / part.path / STORE_FILE)
        try:
            rows = store.rows_of(ids)
        finally:
            store.close()
        gone = set(deleted_rows(index_dir, part).tolist())
        hit = {d: r for d, r in rows.items() if r not in gone}
        if hit:
            offsets = np.load(index_dir / part.path / DOC_OFFSETS_FILE)
            part = _write_deletes(index_dir, part, np.fromiter(hit.values(), dtype=np.int64), gen, number, offsets)
            number += 1
            found.update(hit)
        out.append(part)
    return out, found


def _commit(index_dir: Path, manifest: dict, parts: list[Part], gen: int) -> dict:
    """Make ``parts`` the index (the commit point): the manifest replaced by rename, after an fsync."""
    entry = {
        "generation": gen,
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "documents": sum(p.documents - p.deleted for p in parts),
        "passages": sum(p.passages - p.deleted_passages for p in parts),
        "parts": [p.to_dict() for p in parts],
        "previous": [p.to_dict() for p in parts_of(manifest)],
    }
    new = {**manifest, "segments": entry}
    if (index_dir / SEGMENTS_DIR).is_dir():
        _fsync(index_dir / SEGMENTS_DIR)
    tmp = index_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(new, ensure_ascii=False, indent=2))
        f.flush()
        os.fsync(f.fileno())
    _crash_point("manifest-tmp")
    os.replace(tmp, index_dir / MANIFEST)
    _fsync(index_dir)
    _crash_point("committed")
    _collect_garbage(index_dir, new)
    return new


def _collect_garbage(index_dir: Path, manifest: dict) -> None:
    """Remove what neither this generation nor the one before uses (after :data:`KEEP_OLD_SECONDS`):
    replaced delete files, segments merged away, what a killed change left behind."""
    folder = index_dir / SEGMENTS_DIR
    if not folder.is_dir():
        return
    seg = manifest.get("segments") or {}
    used = {p.get(k) for p in seg.get("parts", []) + seg.get("previous", []) for k in ("path", "deletes")}
    now = time.time()
    for path in folder.iterdir():
        rel = f"{SEGMENTS_DIR}/{path.name}"
        if rel in used:
            continue
        try:
            if now - path.stat().st_mtime < KEEP_OLD_SECONDS:
                continue
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass
    for path in index_dir.glob(f".{MANIFEST}.*.tmp"):
        try:
            if now - path.stat().st_mtime >= KEEP_OLD_SECONDS:
                path.unlink()
        except OSError:
            pass


def _write_segment(index_dir: Path, manifest: dict, docs: Iterable[Document], gen: int, *, dense_model: str | None,
                   encoder=None, batch_size: int = 32, strict: bool = False, show_progress: bool = False,
                   reuse_from: list[Path] = ()):
    """Write ``docs`` as the segment of generation ``gen`` with :func:`~index.build.build_index` (so it has
    every file an index has) and the index's settings; fsynced. Returns its path (relative) and build report."""
    from .build import build_index

    name = f"{SEGMENTS_DIR}/{SEGMENT_DIR.format(gen)}"
    target = index_dir / name
    (index_dir / SEGMENTS_DIR).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adding-", dir=index_dir / SEGMENTS_DIR) as tmp:
        corpus = Path(tmp) / "documents.jsonl"
        names: set[str] = set()
        with open(corpus, "w", encoding="utf-8") as f:
            for doc in docs:
                names.update(doc.metadata)
                f.write(json.dumps({**doc.metadata, "id": doc.id, "title": doc.title, "text": doc.text},
                                   ensure_ascii=False, default=str) + "\n")
        options = _build_options(manifest, dense_model)
        options["fields"] = _field_types(manifest, names)
        if encoder is not None and options["dense_model"]:
            options["encoder"] = encoder
        try:
            built = build_index(corpus, target, name=f"{manifest.get('name', index_dir.name)} {SEGMENT_DIR.format(gen)}",
                                batch_size=batch_size, show_progress=show_progress, strict=strict, reuse_from=reuse_from,
                                **options)
        except CorpusError as exc:  # said of the documents as given, not of the file they were staged in
            message = re.sub(r"^.*?documents\.jsonl, line (\d+): ", r"document \1: ", str(exc))
            raise UpdateError(re.sub(r" \(use --skip-bad to skip such records\)", "", message)) from None
        except ValueError:
            from .analyzer import Analyzer

            analyzer = Analyzer(options["analyzer"])
            if not any(analyzer.tokens(f"{d['title']}\n{d['text']}") for d in map(json.loads, open(corpus, encoding="utf-8"))):
                raise UpdateError("the added documents have no searchable words") from None
            raise
    _fsync_tree(target)
    return name, built


def _level(part: Part) -> int:
    return len(str(max(1, part.documents - part.deleted))) - 1


def merge_segments(index_dir: str | Path, manifest: dict, *, encoder=None) -> dict:
    """Merge the trailing run of segments of one size class while it holds :data:`MERGE_FACTOR` or more
    (deleted documents dropped, vectors reused); each merge is a commit. Returns the manifest now.
    Called by :func:`add_documents` after its own commit, under the writer lock."""
    from .store import Store

    index_dir = Path(index_dir)
    while True:
        parts = parts_of(manifest)
        segments = [i for i, p in enumerate(parts) if p.path.startswith(f"{SEGMENTS_DIR}/")]
        if len(segments) < MERGE_FACTOR:
            return manifest
        run = [segments[-1]]
        for i in reversed(segments[:-1]):
            if i != run[-1] - 1 or _level(parts[i]) != _level(parts[run[0]]):
                break
            run.append(i)
        if len(run) < MERGE_FACTOR:
            return manifest
        run.sort()
        docs = []
        for i in run:
            gone = set(deleted_rows(index_dir, parts[i]).tolist())
            store = Store(index_dir / parts[i].path / STORE_FILE)
            try:
                docs.extend(Document(d["id"], d["text"], d["title"], d["metadata"])
                            for row, d in enumerate(store.documents()) if row not in gone)
            finally:
                store.close()
        gen = generation(manifest) + 1
        if not docs:  # every document of the run was deleted
            manifest = _commit(index_dir, manifest, parts[: run[0]] + parts[run[-1] + 1 :], gen)
            continue
        dense = "index" if manifest.get("dense") and any(
            (index_dir / parts[i].path / "dense.faiss").is_file() for i in run) else None
        name, built = _write_segment(index_dir, manifest, docs, gen, dense_model=dense, encoder=encoder,
                                     reuse_from=[index_dir / parts[i].path for i in run])
        merged = parts[: run[0]] + [Part(name, built.documents, built.passages)] + parts[run[-1] + 1 :]
        manifest = _commit(index_dir, manifest, merged, gen)


def add_documents(
    index_dir: str | Path,
    documents: Iterable[Document | dict],
    *,
    dense_model: str | None = "index",
    encoder=None,
    batch_size: int = 32,
    strict: bool = False,
    show_progress: bool = False,
) -> UpdateReport:
    """Add ``documents`` (:class:`~index.readers.Document` or dicts with ``id``, ``title``, ``text`` and
    more fields) to the index as one new segment; a document whose id the index holds replaces it
    (as does the last of several with one id). Searchable by any reader that opens the index after
    this returns. New passages are embedded with the index's encoder (``dense_model="index"``;
    ``encoder``: that encoder already loaded), or, when it cannot be had, left lexical-only with a
    note (``strict=True``: raise instead); ``dense_model=None`` skips embedding.

    Example::

        report = add_documents("indexes/sample", [{"id": "d9", "title": "ቡና", "text": "..."}])
        print(report.added, report.replaced, report.generation)
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    batch: dict[str, Document] = {}
    for number, doc in enumerate(documents, start=1):
        doc = _as_document(doc, f"document {number}")
        batch.pop(doc.id, None)
        batch[doc.id] = doc  # the last of one id wins, in its place
    with writer_lock(index_dir):
        manifest = read_manifest(index_dir)
        _check_updatable(index_dir, manifest)
        gen = generation(manifest) + 1
        parts = parts_of(manifest)
        if not batch:
            return UpdateReport(gen - 1, documents=sum(p.documents - p.deleted for p in parts),
                                passages=sum(p.passages - p.deleted_passages for p in parts))
        name, built = _write_segment(index_dir, manifest, batch.values(), gen, dense_model=dense_model, encoder=encoder,
                                     batch_size=batch_size, strict=strict, show_progress=show_progress)
        target = index_dir / name
        _crash_point("segment")
        from .store import Store

        store = Store(target / STORE_FILE)
        try:
            ids = store.doc_ids()  # what the segment holds (a document the reader skipped replaces nothing)
        finally:
            store.close()
        parts, replaced = _mark(index_dir, parts, ids, gen)
        _crash_point("deletes")
        parts.append(Part(name, built.documents, built.passages))
        new = _commit(index_dir, manifest, parts, gen)
        new = merge_segments(index_dir, new, encoder=encoder)
    notes = list(built.notes)
    if (manifest.get("dense") and dense_model) and not (built.manifest.get("dense")):
        notes.append(f"the {built.documents:,} new document(s) have no embeddings (found by keywords only); "
                     "`amharic-search index compact` with the encoder available embeds them")
    return UpdateReport(generation(new), added=len(ids) - len(replaced), replaced=len(replaced), documents=new["segments"]["documents"],
                        passages=new["segments"]["passages"], seconds=time.perf_counter() - t0, notes=notes)


def delete_documents(index_dir: str | Path, ids: Iterable[str]) -> UpdateReport:
    """Mark the documents ``ids`` deleted (ids the index does not hold are listed in ``missing``);
    searchable once this returns.

    Example::

        delete_documents("indexes/sample", ["d9"]).deleted
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    ids = list(dict.fromkeys(str(i) for i in ids))
    with writer_lock(index_dir):
        manifest = read_manifest(index_dir)
        _check_updatable(index_dir, manifest)
        gen = generation(manifest) + 1
        parts, found = _mark(index_dir, parts_of(manifest), ids, gen)
        missing = [i for i in ids if i not in found]
        if not found:
            old = parts_of(manifest)
            return UpdateReport(gen - 1, missing=missing, documents=sum(p.documents - p.deleted for p in old),
                                passages=sum(p.passages - p.deleted_passages for p in old))
        _crash_point("deletes")
        new = _commit(index_dir, manifest, parts, gen)
    return UpdateReport(gen, deleted=len(found), missing=missing, documents=new["segments"]["documents"],
                        passages=new["segments"]["passages"], seconds=time.perf_counter() - t0)


def compact(index_dir: str | Path, *, show_progress: bool = False, strict: bool = True) -> UpdateReport:
    """Merge the segments and drop the deleted documents: the live documents written as one index
    (sharded as before; vectors reused, so only texts never embedded are encoded), swapped in atomically.
    An index with dense vectors needs its encoder here (``strict``), so that none are lost.

    Example::

        compact("indexes/sample").documents
    """
    from .build import build_index

    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        manifest = read_manifest(index_dir)
        if not manifest.get("segments"):
            corpus = manifest.get("corpus") or {}
            return UpdateReport(0, documents=int(corpus.get("documents", 0)), passages=int(corpus.get("passages", 0)),
                                notes=["nothing to compact: the index has no changes since it was built"])
        with tempfile.TemporaryDirectory(prefix=f".{index_dir.name}.compacting-", dir=index_dir.parent) as tmp:
            corpus = Path(tmp) / "documents.jsonl"
            names: set[str] = set()
            with open(corpus, "w", encoding="utf-8") as f:
                for doc in live_documents(index_dir, manifest):
                    names.update(doc["metadata"])
                    f.write(json.dumps({**doc["metadata"], "id": doc["id"], "title": doc["title"], "text": doc["text"]},
                                       ensure_ascii=False, default=str) + "\n")
            options = _build_options(manifest, "index")
            options["fields"] = _field_types(manifest, names)
            options.pop("dense_index_kind", None)  # the merged index chooses exact or IVF by its size
            shards = len(manifest.get("shards") or []) or 1
            built = build_index(corpus, index_dir, name=manifest.get("name"), shards=shards,
                                strict=strict and bool(options["dense_model"]), show_progress=show_progress, **options)
        if manifest.get("fusion"):
            from .manifest import update_manifest

            update_manifest(index_dir, fusion=manifest["fusion"])
    return UpdateReport(0, documents=built.documents, passages=built.passages, seconds=time.perf_counter() - t0,
                        notes=list(built.notes))
