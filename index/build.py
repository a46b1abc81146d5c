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
from typing import Callable

from tqdm.auto import tqdm

from . import __version__
from .analyzer import Analyzer, AnalyzerConfig
from .bm25 import BM25Index, BM25Params
from .chunking import ChunkConfig, chunk_text, estimate_tokens
from .dense import DenseIndex, encode
from .manifest import write_manifest
from .models import DEFAULT_DENSE_MODEL, DEFAULT_RERANKER, load_encoder, model_revision, resolve_model
from .readers import CorpusFormat, ReadReport, read_corpus

STORE_FILE = "store.sqlite"
BM25_DIR = "bm25"
DENSE_FILE = "dense.faiss"


@dataclass
class BuildReport:
    out: Path
    documents: int = 0
    passages: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def searchable_text(title: str, text: str) -> str:
    """What BM25, the encoder and the reranker see of a passage: its document title, then the text."""
    return f"{title}\n{text}" if title else text


def _token_counter(model) -> tuple[Callable[[str], int], str]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return estimate_tokens, "estimate"

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

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
    name: str | None = None,
    examples: list[str] | None = None,
    show_progress: bool = True,
    on_progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Build an index of ``corpus`` in ``out`` (replacing an index already there).

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
    ana = Analyzer(analyzer)

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
        titles: list[str] = []
        docs = read_corpus(
            corpus, format=format, id_field=id_field, text_field=text_field, title_field=title_field,
            skip_bad=skip_bad, report=read,
        )
        for doc in tqdm(docs, desc="reading + chunking", unit=" docs", disable=not show_progress):
            content_hash = hashlib.sha256(f"{doc.title}\x00{doc.text}".encode()).hexdigest()
            corpus_hash.update(f"{doc.id}\x00{content_hash}\n".encode())
            doc_row = writer.add_document(doc.id, doc.title, doc.text, doc.metadata, content_hash)
            if len(titles) < 6 and doc.title.strip():
                titles.append(doc.title.strip())
            for chunk in chunk_text(doc.text, config=chunking, count=count):
                writer.add_passage(doc_row, f"{doc.id}#{chunk.index}", chunk.index, chunk.start, chunk.text)
                texts.append(searchable_text(doc.title, chunk.text))
        writer.close()
        timings["read_chunk"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        progress("lexical index", 0.2)
        terms = [ana.tokens(t) for t in tqdm(texts, desc="analyzing", unit=" passages", disable=not show_progress)]
        bm25_index = BM25Index.build(terms, params=bm25, show_progress=False)
        (tmp / BM25_DIR).mkdir()
        bm25_index.save(tmp / BM25_DIR)
        del terms
        timings["bm25"] = time.perf_counter() - t0

        dense_info = None
        if model is not None:
            t0 = time.perf_counter()
            progress("embedding", 0.3)
            embeddings = _encode_with_progress(model, texts, batch_size, show_progress, progress)
            DenseIndex.build(embeddings).save(tmp / DENSE_FILE)
            timings["dense"] = time.perf_counter() - t0
            dense_info = {
                "model": dense_model,
                "revision": model_revision(model_dir),
                "dim": int(embeddings.shape[1]),
                "normalized": True,
                "faiss": "IndexIDMap2(IndexFlatIP)",
                "max_seq_length": getattr(model, "max_seq_length", None),
                "document_prompt": _prompt(model, "document"),
                "query_prompt": _prompt(model, "query"),
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
            "bm25": {**bm25.to_dict(), "vocabulary": bm25_index.vocab_size},
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
    return BuildReport(out, writer.num_docs, writer.num_passages, read.skipped, timings, manifest)


def _prompt(model, kind: str) -> str | None:
    from .dense import _prompt_name

    name = _prompt_name(model, kind)
    return model.prompts.get(name) if name else None


def _encode_with_progress(model, texts, batch_size, show_progress, progress):
    import numpy as np

    parts = []
    step = max(batch_size * 8, 1)
    bar = tqdm(total=len(texts), desc="embedding", unit=" passages", disable=not show_progress)
    for start in range(0, len(texts), step):
        parts.append(encode(model, texts[start : start + step], kind="document", batch_size=batch_size))
        bar.update(len(texts[start : start + step]))
        progress("embedding", 0.3 + 0.65 * min(1.0, (start + step) / len(texts)))
    bar.close()
    return np.concatenate(parts) if parts else encode(model, [], kind="document")


def _replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is swapped out, then removed."""
    if not out.exists():
        os.rename(new, out)
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if any(out.iterdir()) and not (out / "manifest.json").exists():
        raise FileExistsError(f"{out} exists and is not an amharic-search index; choose another --out")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "index")
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old / "index", out)
        raise
    shutil.rmtree(old, ignore_errors=True)
