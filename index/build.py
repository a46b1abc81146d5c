"""Build an index directory: read, chunk, analyze, BM25, embed, FAISS, manifest; atomically.

The build writes into a temporary sibling directory and moves it into place only when every
file and the manifest are written, so an interrupted build never leaves a half index that loads
and a rebuild in place replaces the old index in one step.

The corpus and the output path are checked before any model is loaded (:func:`check_build_inputs`).
Passage embeddings are checkpointed while they are computed (in ``.NAME.resume/`` beside the
output directory NAME, :func:`checkpoint_root`): an interrupted build (:class:`BuildInterrupted`)
run again embeds only what is missing and gives the same index as an uninterrupted one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .analyzer import Analyzer, AnalyzerConfig
from .bm25 import BM25Index, BM25Params
from .chunking import ChunkConfig, chunk_text, estimate_tokens
from .dense import DenseIndex, IndexKind, choose_engine, choose_precision, encode
from . import atomic
from .fields import FieldSpec, infer_fields, read_metadata, write_fields
from .layout import (BM25_DIR, BM25_DOCS_DIR, CHECKPOINT_INFO, DENSE_FILE, DOC_OFFSETS_FILE, FIELDS_DIR, MAX_SHARDS,
                     STORE_FILE, searchable_text)
from .manifest import write_manifest
from .models import (  # noqa: F401 - weights_fingerprint is part of this module's interface
    DEFAULT_DENSE_MODEL, ModelUnavailableError, DEFAULT_RERANKER, load_encoder, model_fingerprint, model_revision, resolve_model,
    weights_fingerprint,
)
from .readers import CorpusFormat, ReadReport, check_corpus, read_corpus



@dataclass
class BuildReport:
    out: Path
    documents: int = 0
    passages: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    """Against the index that was there before: added, edited, deleted, unchanged documents."""
    embedded: int = 0
    """Passages embedded by this build (the others were reused from the previous index or resumed)."""
    reused: int = 0
    """Passages whose vectors were not computed by this build: from the previous index or resumed."""
    resumed: int = 0
    """Of ``reused``, the passages whose vectors came from an interrupted build's checkpoint."""
    notes: list[str] = field(default_factory=list)
    """Notes for the user, e.g. that the encoder was not available and the index is lexical-only."""


class BuildInterrupted(KeyboardInterrupt):
    """A build interrupted (Ctrl-C) while or after embedding: the passage embeddings finished so far
    are kept in ``checkpoint`` and the same build, run again, computes only the rest.

    ``kept``: passages (of those to embed) whose vectors the checkpoint holds; ``total``: passages
    this build had to embed (not reused from the previous index); ``checkpoint``: the directory, or
    None when nothing was kept.
    """

    def __init__(self, kept: int, total: int, checkpoint: Path | None) -> None:
        super().__init__(kept, total, checkpoint)
        self.kept, self.total, self.checkpoint = kept, total, checkpoint

    def __str__(self) -> str:
        if self.kept and self.checkpoint is not None:
            return (f"{self.kept:,} of {self.total:,} passage embeddings kept in {self.checkpoint}; "
                    "run the same command again to resume")
        return f"none of {self.total:,} passage embeddings was finished; nothing kept to resume"


def checkpoint_root(out: str | Path) -> Path:
    """Where the embedding checkpoints of builds into ``out`` are kept: ``.{name}.resume`` beside it,
    one subdirectory per encoder (:func:`checkpoint_key`). A successful build removes it."""
    out = Path(out)
    return out.parent / f".{out.name}.resume"


def checkpoint_key(emb_key: str, fingerprint: str | None) -> str:
    """A checkpoint's subdirectory: the embedding key (weights, max length, prompt, precision) and the
    model's fingerprint (also its tokenizer and pooling), so no other encoder's vectors are resumed."""
    return hashlib.sha256(f"{emb_key}\x00{fingerprint}".encode()).hexdigest()[:24]


def check_build_inputs(
    corpus: str | Path,
    out: str | Path,
    *,
    format: CorpusFormat = "auto",
    id_field: str = "id",
    text_field: str = "text",
    title_field: str = "title",
    skip_bad: bool = False,
) -> None:
    """Raise what a build would raise about its inputs, before any model is loaded: a
    :class:`~index.readers.CorpusError` for a missing or unreadable corpus or a bad first record,
    a :class:`FileExistsError` for an ``out`` that is a file or a directory that is not an index.
    """
    atomic.check_out(Path(out))
    check_corpus(corpus, format=format, id_field=id_field, text_field=text_field, title_field=title_field,
                 skip_bad=skip_bad)


def _token_counter(model) -> tuple[Callable[[str], int], str]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return estimate_tokens, "estimate"

    def count(text: str) -> int:
        # counting a whole document: no warning that it is longer than the model's window (that is why it is counted)
        return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    return count, f"tokenizer:{getattr(tokenizer, 'name_or_path', 'model')}"


def build_index(
    corpus: str | Path,
    out: str | Path,
    *,
    format: CorpusFormat = "auto",
    id_field: str = "id",
    text_field: str = "text",
    title_field: str = "title",
    skip_bad: bool = False,
    dense_model: str | None = DEFAULT_DENSE_MODEL,
    analyzer: AnalyzerConfig = AnalyzerConfig(),
    bm25: BM25Params = BM25Params(),
    chunking: ChunkConfig = ChunkConfig(),
    batch_size: int = 32,
    dense_index_kind: IndexKind = "auto",
    dense_precision: Literal["auto", "fp32", "bf16"] = "auto",
    dense_engine: Literal["auto", "torch", "openvino"] = "auto",
    name: str | None = None,
    examples: list[str] | None = None,
    show_progress: bool = True,
    on_progress: Callable[[str, float], None] | None = None,
    strict: bool = False,
    shards: int = 1,
    ray: str | None = None,
    ray_workers: int | None = None,
    encoder=None,
    reuse_from: Sequence[str | Path] = (),
    metadata: str | Path | None = None,
    fields: dict[str, FieldSpec] | None = None,
) -> BuildReport:
    """Build an index of ``corpus`` in ``out`` (replacing an index already there).

    An encoder that cannot be had (offline and not cached, a wrong path) is skipped: the index is
    built lexical-only and :attr:`BuildReport.notes` says so and how to add the embeddings later
    (the same build with the encoder available); ``strict=True`` raises ModelUnavailableError instead.
    An interrupted build raises :class:`BuildInterrupted` and keeps the embeddings done so far.

    ``dense_index_kind``: ``auto`` (exact search up to 100,000 passages, IVF above), ``flat`` or ``ivf``.
    ``dense_precision``: ``auto`` embeds in bf16 on a CPU that computes it natively (2.2x faster,
    cosine >= 0.999 to fp32: BENCHMARKS.md), else fp32. ``dense_engine``: ``auto`` runs bf16 through
    OpenVINO where it is installed (1.4x PyTorch bf16), else PyTorch (:func:`index.dense.choose_engine`).
    ``shards``: write the index as that many shards (:mod:`index.shard`; searched exactly as one).
    ``ray``: embed on a Ray cluster (``auto``, ``local`` or an address; :mod:`index.ray_embed`), with
    ``ray_workers`` encoder actors at most (default: one per GPU, else one per node); the index is
    the one a local build writes, its manifest's ``build`` entry says how it was made.
    ``encoder``: ``dense_model`` already loaded (a service adding documents: :mod:`index.update`).
    ``reuse_from``: more index directories whose vectors may be reused (segments being merged).
    ``metadata``: a JSONL/CSV file of more fields per document id, joined to the corpus (its values
    win over the corpus's own). ``fields``: types of fields (:mod:`index.fields`) that override the
    inferred ones; every field's type is in the manifest's ``fields``.

    Example::

        report = build_index("data/sample/corpus.jsonl", "indexes/sample", dense_model=None)
        print(report.documents, report.passages)
    """
    out = Path(out)
    corpus = Path(corpus)
    if not 1 <= shards <= MAX_SHARDS:
        from .shard import ShardError

        raise ShardError(f"shards must be 1 to {MAX_SHARDS}, not {shards}")
    # a missing corpus, a bad first record or an `out` that is not an index: said before a model loads
    check_build_inputs(corpus, out, format=format, id_field=id_field, text_field=text_field,
                       title_field=title_field, skip_bad=skip_bad)
    joined = read_metadata(metadata, id_field="id") if metadata is not None else None
    progress = on_progress or (lambda stage, fraction: None)
    timings: dict[str, float] = {}
    model = None
    model_dir = None
    notes: list[str] = []
    was_sharded = _shard_count(out)
    if was_sharded > 1 and shards != was_sharded:
        notes.append(f"the index at {out} had {was_sharded} shards and is now written with {shards}"
                     + (" (unsharded)" if shards == 1 else "") + f"; --shards {was_sharded} keeps its shards")
    if dense_model:
        try:
            model_dir = resolve_model(dense_model)  # fails fast, before any work
        except ModelUnavailableError as exc:
            if strict:
                exc.stage = "dense"
                raise
            notes.append(exc.note("dense") + " The index is built lexical-only; to add the embeddings later, run the "
                                             "same build again with the encoder available (only they are computed).")
            dense_model = None
    if dense_model:
        model = encoder if encoder is not None else load_encoder(dense_model)
    count, counter_name = _token_counter(model) if model is not None else (estimate_tokens, "estimate")
    window = getattr(model, "max_seq_length", None) if model is not None else None
    if window and chunking.max_tokens > window - 4:
        # a passage must fit the encoder's window, or its tail would never be embedded
        chunking = ChunkConfig(max_tokens=window - 4, overlap=chunking.overlap)
    ana = Analyzer(analyzer)
    precision = choose_precision(dense_precision, model) if model is not None else None
    engine = choose_engine(dense_engine, model, precision) if model is not None else None
    emb_key = (embedding_key(dense_model, weights_fingerprint(model_dir), model, precision, engine)
               if model is not None else None)
    fingerprint = model_fingerprint(model_dir) if model is not None else None
    previous = _previous_index(out, emb_key, fingerprint)
    for other in reuse_from if model is not None else ():
        more = _previous_index(Path(other), emb_key, fingerprint)
        if more is not None:
            previous = previous or _Previous({}, {})
            previous.vectors.update(more.vectors)
    checkpoint = (_Checkpoint(checkpoint_root(out) / checkpoint_key(emb_key, fingerprint))
                  if model is not None else None)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        progress("reading", 0.0)
        read = ReadReport()
        from .store import StoreWriter

        writer = StoreWriter(tmp / STORE_FILE)
        corpus_hash = hashlib.sha256()
        texts: list[str] = []
        doc_texts: list[str] = []
        doc_offsets: list[int] = [0]
        titles: list[str] = []
        docs = read_corpus(
            corpus, format=format, id_field=id_field, text_field=text_field, title_field=title_field,
            skip_bad=skip_bad, report=read,
        )
        new_hashes: dict[str, str] = {}
        records: list[dict] = []  # each document's fields, for fields/
        for doc in tqdm(docs, desc="reading + chunking", unit=" docs", disable=not show_progress):
            if joined is not None and doc.id in joined:
                doc.metadata = {**doc.metadata, **joined[doc.id]}
            records.append(doc.metadata)
            content_hash = hashlib.sha256(f"{doc.title}\x00{doc.text}".encode()).hexdigest()
            new_hashes[doc.id] = content_hash
            corpus_hash.update(f"{doc.id}\x00{content_hash}\n".encode())
            doc_row = writer.add_document(doc.id, doc.title, doc.text, doc.metadata, content_hash)
            if len(titles) < 6 and doc.title.strip():
                titles.append(doc.title.strip())
            chunks = chunk_text(doc.text, config=chunking, count=count)
            for chunk in chunks:
                writer.add_passage(doc_row, f"{doc.id}#{chunk.index}", chunk.index, chunk.start, chunk.text)
                texts.append(searchable_text(doc.title, chunk.text))
            # a one-passage document's text is its passage's (stripped): not held twice
            doc_texts.append(None if len(chunks) == 1 else searchable_text(doc.title, doc.text))
            doc_offsets.append(len(texts))
        writer.close()
        field_info = write_fields(tmp / FIELDS_DIR, records, infer_fields(records, fields))
        if joined is not None:
            unmatched = len(joined.keys() - new_hashes.keys())
            if unmatched:
                notes.append(f"{unmatched:,} record(s) of {metadata} have an id that is not in the corpus")
        del records
        timings["read_chunk"] = time.perf_counter() - t0
        if shards > writer.num_docs:
            from .shard import ShardError

            raise ShardError(f"cannot cut {writer.num_docs:,} documents into {shards} shards; choose --shards "
                             f"{max(1, writer.num_docs)} or fewer")

        t0 = time.perf_counter()
        progress("lexical index", 0.2)
        terms = (ana.tokens(t) for t in tqdm(texts, desc="analyzing", unit=" passages", disable=not show_progress))
        bm25_index = BM25Index.build(terms, params=bm25, show_progress=False)
        (tmp / BM25_DIR).mkdir()
        bm25_index.save(tmp / BM25_DIR)
        del terms
        # Documents are ranked on their whole text (long articles match a query across passages);
        # the passage index picks each document's best passage.
        if all(t is None for t in doc_texts):
            atomic.link_tree(tmp / BM25_DIR, tmp / BM25_DOCS_DIR)  # every document is one passage: the same index
        else:
            doc_terms = (ana.tokens(texts[doc_offsets[i]] if t is None else t)
                         for i, t in enumerate(tqdm(doc_texts, desc="analyzing documents", unit=" docs", disable=not show_progress)))
            (tmp / BM25_DOCS_DIR).mkdir()
            BM25Index.build(doc_terms, params=bm25, show_progress=False).save(tmp / BM25_DOCS_DIR)
            del doc_terms
        np.save(tmp / DOC_OFFSETS_FILE, np.asarray(doc_offsets, dtype=np.int64))
        del doc_texts
        timings["bm25"] = time.perf_counter() - t0

        dense_info = None
        build_info = None
        if model is not None:
            t0 = time.perf_counter()
            progress("embedding", 0.3)
            checkpoint.info = {
                "model": dense_model, "fingerprint": fingerprint, "embedding_key": emb_key,
                "corpus": {"path": str(corpus), "sha256": corpus_hash.hexdigest()}, "out": str(out),
                "amharic_search_version": __version__,
            }
            pools = []  # the Ray encoder pool, started only when there is something to embed

            def on_ray(batches):
                from .models import looks_like_path
                from .ray_embed import RayEncoderPool

                # workers load the encoder themselves: by hub id, or by the absolute path of a local folder
                worker_model = str(Path(dense_model).resolve()) if looks_like_path(dense_model) else dense_model
                pools.append(RayEncoderPool(ray, worker_model, precision=precision, engine=engine,
                                            batch_size=batch_size, workers=ray_workers))
                return pools[0].map(batches)

            try:
                embeddings, embedded, resumed = _encode_with_progress(
                    model, texts, batch_size, show_progress, progress, reuse=previous.vectors if previous else {},
                    precision=precision, engine=engine, checkpoint=checkpoint, encode_steps=on_ray if ray else None,
                )
            finally:
                for pool in pools:
                    build_info = pool.description
                    pool.close()
            dense_index = DenseIndex.build(embeddings, kind=dense_index_kind)
            dense_index.save(tmp / DENSE_FILE)
            timings["dense"] = time.perf_counter() - t0
            dense_info = {
                "model": dense_model,
                "revision": model_revision(model_dir),
                "dim": int(embeddings.shape[1]),
                "normalized": True,
                "faiss": dense_index.info,
                "max_seq_length": getattr(model, "max_seq_length", None),
                "precision": precision,
                "engine": engine,
                "document_prompt": _prompt(model, "document"),
                "query_prompt": _prompt(model, "query"),
                "embedding_key": emb_key,
                "fingerprint": fingerprint,
            }

        progress("finishing", 0.95)
        manifest = {
            "name": name or out.name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "amharic_search_version": __version__,
            "corpus": {
                "path": str(corpus.resolve()),  # absolute: a fix-it command names it wherever it runs
                "format": format,
                "sha256": corpus_hash.hexdigest(),
                "documents": writer.num_docs,
                "passages": writer.num_passages,
                "skipped": len(read.skipped),
            },
            "analyzer": ana.to_dict(),
            "bm25": {**bm25.to_dict(), "vocabulary": bm25_index.vocab_size, "ranks": "documents (whole text)",
                     "passage_choice": "best passage by passage-level BM25"},
            "chunking": {**chunking.to_dict(), "token_counter": counter_name},
            "dense": dense_info,
            "fields": field_info,
            "reranker": {"default_model": DEFAULT_RERANKER},
            "examples": list(examples or titles)[:8],
        }
        if build_info:
            manifest["build"] = build_info
        write_manifest(tmp, manifest)
        if shards > 1:
            from .shard import split_index

            progress("writing shards", 0.97)
            manifest = split_index(tmp, out, shards=shards, show_progress=show_progress)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            atomic.replace_dir(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if checkpoint is None or checkpoint.total is None or isinstance(exc, BuildInterrupted):
            raise  # interrupted before embedding: nothing new was kept
        kept = checkpoint.kept()
        if not checkpoint.vectors:
            checkpoint.discard()  # interrupted before the first step was written
        if isinstance(exc, KeyboardInterrupt):
            raise BuildInterrupted(kept, checkpoint.total, checkpoint.directory if kept else None) from exc
        if kept and hasattr(exc, "add_note"):
            exc.add_note(f"{kept:,} of {checkpoint.total:,} passage embeddings kept in {checkpoint.directory}; "
                         "run the same command again to resume")
        raise
    # the index is in place: no checkpoint of any encoder is worth resuming into it
    shutil.rmtree(checkpoint_root(out), ignore_errors=True)
    progress("done", 1.0)
    report = BuildReport(out, writer.num_docs, writer.num_passages, read.skipped, timings, manifest, notes=notes)
    if previous is not None:
        report.changes = _diff(previous.doc_hashes, new_hashes)
    if model is not None:
        report.embedded = embedded
        report.reused = writer.num_passages - embedded
        report.resumed = resumed
    return report


@dataclass
class _Previous:
    doc_hashes: dict[str, str]
    vectors: dict[str, "np.ndarray"]


def embedding_key(name: str, weights: str, model, precision: str = "fp32", engine: str = "torch") -> str:
    """What decides a passage's vector: the model's weights, max length, document prompt, precision and engine."""
    from .embcache import model_key

    extra = {} if precision == "fp32" else {"precision": precision}  # fp32 keys stay those of earlier indexes
    if engine != "torch":  # and PyTorch keys those of indexes built before the engine choice
        extra["engine"] = engine
    return model_key(name, weights=weights, max_seq_length=getattr(model, "max_seq_length", None), **extra,
                     prompt=_prompt(model, "document"))


def _previous_index(out: Path, emb_key: str | None, fingerprint: str | None = None) -> _Previous | None:
    """What a rebuild can reuse from the index already at ``out`` (None if nothing or unreadable):
    its vectors only if they were computed the same way (embedding key, and model fingerprint where
    the manifest records one)."""
    from .embcache import text_key
    from .manifest import IndexFormatError, read_manifest
    from .store import Store

    try:
        manifest = read_manifest(out)
        dense = manifest.get("dense") or {}
        same_model = dense.get("fingerprint") in (None, fingerprint)  # indexes built before fingerprints: the key decides
        reuse = bool(emb_key) and dense.get("embedding_key") == emb_key and same_model
        doc_hashes: dict[str, str] = {}
        vectors: dict[str, np.ndarray] = {}
        # a sharded index (index.shard): each shard is an index of its own; a changed one (index.update)
        # also has segments
        if manifest.get("segments"):
            parts = [out / p["path"] for p in manifest["segments"]["parts"]]
        else:
            parts = [out / s["path"] for s in manifest["shards"]] if manifest.get("shards") else [out]
        for part in parts:
            store = Store(part / STORE_FILE)
            doc_hashes.update(store.document_hashes())
            if reuse and (part / DENSE_FILE).is_file():
                info = (read_manifest(part).get("dense") or {}) if part.resolve() != out.resolve() else dense
                matrix = DenseIndex.load(part / DENSE_FILE, info.get("faiss")).vectors()
                for p in store.passages(range(store.num_passages)):
                    vectors[text_key(searchable_text(p.title, p.text))] = matrix[p.row]
        return _Previous(doc_hashes, vectors)
    except (IndexFormatError, OSError, ValueError, RuntimeError, KeyError):
        return None


def _shard_count(out: Path) -> int:
    """How many shards the index already at ``out`` has (1: unsharded, or no index)."""
    try:
        return len(json.loads((out / "manifest.json").read_text(encoding="utf-8")).get("shards") or []) or 1
    except (OSError, ValueError, AttributeError):
        return 1


def _diff(old: dict[str, str], new: dict[str, str]) -> dict[str, int]:
    return {
        "added": sum(1 for d in new if d not in old),
        "edited": sum(1 for d, h in new.items() if d in old and old[d] != h),
        "deleted": sum(1 for d in old if d not in new),
        "unchanged": sum(1 for d, h in new.items() if old.get(d) == h),
    }


def _prompt(model, kind: str) -> str | None:
    from .dense import _prompt_name

    name = _prompt_name(model, kind)
    return model.prompts.get(name) if name else None


class _Checkpoint:
    """Passage embeddings of an unfinished build (an :class:`~index.embcache.EmbeddingCache` of
    text hash -> vector, one shard per step) and ``checkpoint.json`` describing the build."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.info: dict = {}
        self.total: int | None = None
        """Passages to embed (set when embedding starts)."""
        self.needed: dict[str, int] = {}
        """Text hash -> passages with that text, of those to embed."""
        self._cache = None
        self.vectors: dict[str, np.ndarray] = {}
        if directory.is_dir():
            self._open()

    def _open(self) -> None:
        from .embcache import EmbeddingCache

        self._cache = EmbeddingCache(self.directory.parent, self.directory.name)
        self.vectors = self._cache.by_hash()

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        if self._cache is None:
            self._open()
        info = {**self.info, "passages_to_embed": self.total,
                "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        tmp = self.directory / f".{CHECKPOINT_INFO}.tmp"
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, self.directory / CHECKPOINT_INFO)
        self._cache.put(texts, vectors)

    def kept(self) -> int:
        return sum(n for key, n in self.needed.items() if key in self.vectors)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        try:
            self.directory.parent.rmdir()  # if no other encoder's checkpoint is there
        except OSError:
            pass


def _encode_with_progress(model, texts, batch_size, show_progress, progress, *, reuse, precision="fp32",
                          engine="torch", checkpoint: _Checkpoint | None = None,
                          encode_steps: Callable[[Iterable[list[str]]], Iterator[np.ndarray]] | None = None):
    """Embeddings of ``texts``: those in ``reuse`` (text hash -> vector) as they are, then those in
    ``checkpoint``; each distinct remaining text is encoded once, in steps of ``batch_size * 8``
    texts, each step written to ``checkpoint`` before the next. ``encode_steps`` maps the steps to
    their vectors, in order (default: one after the other with ``model``; a Ray pool: in parallel).

    Returns (embeddings, passages embedded, passages taken from the checkpoint). The same build run
    again after an interruption gives bit-identical vectors: the checkpoint holds the first steps' texts, so what
    is left to encode is the rest of the same list and is cut into the same steps; the encoder
    sorts texts by length within one call only, so each step's batches are the same too.
    """
    from .dense import embedding_dim
    from .embcache import text_key

    dim = embedding_dim(model)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keys = [text_key(t) for t in texts]
    todo: dict[str, list[int]] = {}  # text hash -> rows with that text, in first-seen order
    for i, key in enumerate(keys):
        vec = reuse.get(key)
        if vec is not None and vec.shape[0] == dim:
            out[i] = vec
        else:
            todo.setdefault(key, []).append(i)
    total = sum(len(rows) for rows in todo.values())
    saved = checkpoint.vectors if checkpoint is not None else {}
    if checkpoint is not None:
        checkpoint.total, checkpoint.needed = total, {key: len(rows) for key, rows in todo.items()}
    missing: list[int] = []  # the first row of each text still to encode
    resumed = 0
    for key, rows in todo.items():
        vec = saved.get(key)
        if vec is not None and vec.shape[0] == dim:
            out[rows] = vec
            resumed += len(rows)
        else:
            missing.append(rows[0])
    # longest first over the whole collection: batches of similar lengths, less padding than sorting
    # within each step (still one fixed order, so a resumed build cuts the rest into the same steps)
    missing.sort(key=lambda i: -len(texts[i]))
    step = max(batch_size * 8, 1)
    bar = tqdm(total=len(texts), initial=len(texts) - total + resumed, desc="embedding", unit=" passages",
               disable=not show_progress)
    embedded = 0
    steps = [missing[start : start + step] for start in range(0, len(missing), step)]
    if encode_steps is None:
        def encode_steps(batches):
            return (encode(model, b, kind="document", batch_size=batch_size, precision=precision, engine=engine)
                    for b in batches)
    results = encode_steps([texts[i] for i in idx] for idx in steps) if steps else iter(())
    for number, (idx, vectors) in enumerate(zip(steps, results)):
        batch = [texts[i] for i in idx]
        if checkpoint is not None:
            checkpoint.put(batch, vectors)
        done = 0
        for i, vec in zip(idx, vectors):
            rows = todo[keys[i]]
            out[rows] = vec
            done += len(rows)
        embedded += done
        bar.update(done)
        progress("embedding", 0.3 + 0.65 * (number + 1) / len(steps))
    bar.close()
    return out, embedded, resumed
