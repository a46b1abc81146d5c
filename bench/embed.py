"""Embed a collection's documents and queries with an encoder, cached on disk.

    python bench/embed.py --collection enh --model ../shared/models/me5-small-am --max-seq-length 256

Vectors land in bench/.cache/embeddings (keyed by model, settings and text hash), so reruns and
the fusion benchmark take seconds. Documents are embedded whole (truncated at the max length) and,
with --passages, also as the index's passages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, load_collection, tuning_queries  # noqa: E402
from index.embcache import EmbeddingCache, encode_cached, model_key  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "embeddings"
STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"


def load_model(path: str, max_seq_length: int):
    from index.models import load_encoder

    model = load_encoder(path)
    model.max_seq_length = max_seq_length
    return model


def encoder(model, kind: str, batch_size: int = 32):
    from index.dense import encode

    return lambda texts: encode(model, texts, kind=kind, batch_size=batch_size)


def caches(model_path: str, max_seq_length: int) -> dict[str, EmbeddingCache]:
    name = Path(model_path).name
    return {
        kind: EmbeddingCache(CACHE, model_key(name, max_seq_length=max_seq_length, kind=kind))
        for kind in ("query", "document")
    }


def embed_texts(model, cache: EmbeddingCache, kind: str, texts: list[str], desc: str) -> np.ndarray:
    bar = tqdm(total=len(texts), desc=desc, unit=" texts")

    def progress(done, total):
        bar.n = done
        bar.refresh()

    out = encode_cached(encoder(model, kind), texts, cache, chunk=256, progress=progress)
    bar.close()
    return out


def document_texts(corpus: list[dict]) -> list[str]:
    from index.build import searchable_text

    return [searchable_text(d.get("title", ""), d["text"]) for d in corpus]


def passage_texts(corpus: list[dict], model, max_tokens: int) -> list[tuple[str, str]]:
    """(doc id, passage text) pairs, chunked as the index chunks, counted with the model's tokenizer."""
    from index.build import searchable_text
    from index.chunking import ChunkConfig, chunk_text

    tok = model.tokenizer

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    out = []
    for d in corpus:
        for c in chunk_text(d["text"], config=ChunkConfig(max_tokens=max_tokens), count=count):
            out.append((d["id"], searchable_text(d.get("title", ""), c.text)))
    return out


@click.command()
@click.option("--collection", default="enh")
@click.option("--model", "model_path", default=str(STAND_IN))
@click.option("--max-seq-length", default=256, show_default=True)
@click.option("--passages/--no-passages", default=False, help="Also embed the chunked passages.")
def main(collection: str, model_path: str, max_seq_length: int, passages: bool) -> None:
    model = load_model(model_path, max_seq_length)
    c = caches(model_path, max_seq_length)
    corpus, queries, _ = load_collection(collection)
    tq, _ = tuning_queries(collection)
    t0 = time.perf_counter()
    embed_texts(model, c["query"], "query", list(queries.values()) + list(tq.values()), "queries")
    embed_texts(model, c["document"], "document", document_texts(corpus), "documents")
    if passages:
        embed_texts(model, c["document"], "document", [t for _, t in passage_texts(corpus, model, max_seq_length - 6)], "passages")
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
