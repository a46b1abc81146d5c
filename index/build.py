"""Build an index directory: read, chunk, analyze, BM25, embed, FAISS, manifest; atomically.

The build writes into a temporary sibling directory and moves it into place only when every
file and the manifest are written, so an interrupted build never leaves a half index that loads
and a rebuild in place replaces the old index in one step.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .analyzer import Analyzer, AnalyzerConfig
from .bm25 import BM25Index, BM25Params
from .chunking import ChunkConfig, chunk_text, estimate_tokens
from .dense import DenseIndex, IndexKind, choose_precision, encode
from .manifest import write_manifest
from .models import DEFAULT_DENSE_MODEL, DEFAULT_RERANKER, load_encoder, model_revision, resolve_model
from .readers import CorpusFormat, ReadReport, read_corpus

STORE_FILE = "store.sqlite"
BM25_DIR = "bm25"
BM25_DOCS_DIR = "bm25_docs"
DOC_OFFSETS_FILE = "doc_offsets.npy"
DENSE_FILE = "dense.faiss"


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
    """Passages embedded by this build (the others were reused from the previous index)."""
    reused: int = 0


def searchable_text(title: str, text: str) -> str:
    """What BM25, the encoder and the reranker see of a passage: its document title, then the text."""
    return f"{title}\n{text}" if title else text


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
    name: str | None = None,
    examples: list[str] | None = None,
    show_progress: bool = True,
    on_progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Build an index of ``corpus`` in ``out`` (replacing an index already there).

    ``dense_index_kind``: ``auto`` (exact search up to 100,000 passages, IVF above), ``flat`` or ``ivf``.
    ``dense_precision``: ``auto`` embeds in bf16 on a CPU that computes it natively (2.2x faster,
    cosine >= 0.999 to fp32: BENCHMARKS.md), else fp32.

    Example::

        report = build_index("data/sample/corpus.jsonl", "indexes/sample", dense_model=None)
        print(report.documents, report.passages)
    """
    out = Path(out)
    corpus = Path(corpus)
    progress = on_progress or (lambda stage, fraction: None)
    timings: dict[str, float] = {}
    model = None
    model_dir = None
    if dense_model:
        model_dir = resolve_model(dense_model)  # fails fast, before any work
        model = load_encoder(dense_model)
    count, counter_name = _token_counter(model) if model is not None else (estimate_tokens, "estimate")
    window = getattr(model, "max_seq_length", None) if model is not None else None
    if window and chunking.max_tokens > window - 4:
        # a passage must fit the encoder's window, or its tail would never be embedded
        chunking = ChunkConfig(max_tokens=window - 4, overlap=chunking.overlap)
    ana = Analyzer(analyzer)
    precision = choose_precision(dense_precision, model) if model is not None else None
    emb_key = embedding_key(dense_model, weights_fingerprint(model_dir), model, precision) if model is not None else None
    previous = _previous_index(out, emb_key)

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
        for doc in tqdm(docs, desc="reading + chunking", unit=" docs", disable=not show_progress):
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
        timings["read_chunk"] = time.perf_counter() - t0

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
            _link_tree(tmp / BM25_DIR, tmp / BM25_DOCS_DIR)  # every document is one passage: the same index
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
        if model is not None:
            t0 = time.perf_counter()
            progress("embedding", 0.3)
            embeddings, embedded = _encode_with_progress(model, texts, batch_size, show_progress, progress,
                                                         reuse=previous.vectors if previous else {}, precision=precision)
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
                "document_prompt": _prompt(model, "document"),
                "query_prompt": _prompt(model, "query"),
                "embedding_key": emb_key,
            }

        progress("finishing", 0.95)
        manifest = {
            "name": name or out.name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "amharic_search_version": __version__,
            "corpus": {
                "path": str(corpus),
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
            "reranker": {"default_model": DEFAULT_RERANKER},
            "examples": list(examples or titles)[:8],
        }
        write_manifest(tmp, manifest)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress("done", 1.0)
    report = BuildReport(out, writer.num_docs, writer.num_passages, read.skipped, timings, manifest)
    if previous is not None:
        report.changes = _diff(previous.doc_hashes, new_hashes)
    if model is not None:
        report.embedded = embedded
        report.reused = writer.num_passages - embedded
    return report


@dataclass
class _Previous:
    doc_hashes: dict[str, str]
    vectors: dict[str, "np.ndarray"]


def weights_fingerprint(model_dir: str) -> str:
    """SHA-256 of the model's weight files: a changed model never reuses old vectors."""
    h = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*.safetensors")):
        h.update(path.relative_to(model_dir).as_posix().encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def embedding_key(name: str, weights: str, model, precision: str = "fp32") -> str:
    """What decides a passage's vector: the model's weights, max length, document prompt and precision."""
    from .embcache import model_key

    extra = {} if precision == "fp32" else {"precision": precision}  # fp32 keys stay those of earlier indexes
    return model_key(name, weights=weights, max_seq_length=getattr(model, "max_seq_length", None), **extra,
                     prompt=_prompt(model, "document"))


def _previous_index(out: Path, emb_key: str | None) -> _Previous | None:
    """What a rebuild can reuse from the index already at ``out`` (None if nothing or unreadable)."""
    from .embcache import text_key
    from .manifest import IndexFormatError, read_manifest
    from .store import Store

    try:
        manifest = read_manifest(out)
        store = Store(out / STORE_FILE)
        doc_hashes = store.document_hashes()
        vectors: dict[str, np.ndarray] = {}
        dense = manifest.get("dense") or {}
        if emb_key and dense.get("embedding_key") == emb_key and (out / DENSE_FILE).is_file():
            matrix = DenseIndex.load(out / DENSE_FILE, dense.get("faiss")).vectors()
            for p in store.passages(range(store.num_passages)):
                vectors[text_key(searchable_text(p.title, p.text))] = matrix[p.row]
        return _Previous(doc_hashes, vectors)
    except (IndexFormatError, OSError, ValueError, RuntimeError, KeyError):
        return None


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


def _encode_with_progress(model, texts, batch_size, show_progress, progress, *, reuse, precision="fp32"):
    """Embeddings of ``texts``, taking those in ``reuse`` (text hash -> vector) as they are."""
    from .dense import embedding_dim
    from .embcache import text_key

    out = np.zeros((len(texts), embedding_dim(model)), dtype=np.float32)
    missing = []
    for i, t in enumerate(texts):
        vec = reuse.get(text_key(t))
        if vec is not None and vec.shape[0] == out.shape[1]:
            out[i] = vec
        else:
            missing.append(i)
    step = max(batch_size * 8, 1)
    bar = tqdm(total=len(texts), initial=len(texts) - len(missing), desc="embedding", unit=" passages",
               disable=not show_progress)
    for start in range(0, len(missing), step):
        idx = missing[start : start + step]
        out[idx] = encode(model, [texts[i] for i in idx], kind="document", batch_size=batch_size, precision=precision)
        bar.update(len(idx))
        progress("embedding", 0.3 + 0.65 * min(1.0, (start + step) / len(missing)))
    bar.close()
    return out, len(missing)


def _link_tree(src: Path, dst: Path) -> None:
    """``dst`` holds the files of ``src``: hard links where the file system has them, else copies."""
    dst.mkdir()
    for path in src.iterdir():
        try:
            os.link(path, dst / path.name)
        except OSError:
            shutil.copy2(path, dst / path.name)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def _replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``. An existing index at ``out`` is exchanged with ``new`` atomically
    where the system allows (readers never see a missing index), else moved aside first."""
    if not out.exists():
        os.rename(new, out)
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if any(out.iterdir()) and not (out / "manifest.json").exists():
        raise FileExistsError(f"{out} exists and is not an amharic-search index; choose another --out")
    if _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now holds the old index
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "index")
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old / "index", out)
        raise
    shutil.rmtree(old, ignore_errors=True)
