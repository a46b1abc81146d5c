"""Dense first-stage runs for the fusion benchmark: one truncated embedding per document versus
documents chunked into passages (document score from its passages), with the stand-in encoder.

    python bench/dense_runs.py --collection enh --window 256                  # CPU: about 1 h 20 for enh
    python bench/dense_runs.py --collection enh --window 256 --device cuda    # a GPU: about a minute

For each test and tuning query it writes the top-300 documents of every variant to
bench/.cache/runs/{collection}-w{window}-{variant}.npz (document rows into the collection's corpus,
scores); bench/fusion.py reads them. Embeddings are cached in bench/.cache/embeddings (keyed by
model, window and text hash), so a rerun only ranks.

Variants: ``truncated`` (the document cut at the window), ``max`` (passages of at most min(350, window - 6)
tokens: the index's chunking, 350 tokens capped by the encoder window; document score = its best
passage), ``sum2`` (sum of its two
best passages; a one-passage document counts its passage twice), ``max+truncated`` (mean of the
best passage and the truncated document).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, ROOT, read_jsonl, tuning_queries  # noqa: E402
from amharic_search.index.layout import searchable_text  # noqa: E402
from amharic_search.index.embcache import EmbeddingCache, encode_cached, model_key  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
DEPTH = 300
VARIANTS = ("truncated", "max", "sum2", "max+truncated")
SCORE_STEP = 1e-5  # scores are stored as uint16 gaps below each query's best score (compact, 1e-5 exact)


def document_texts(corpus: list[dict]) -> list[str]:
    return [searchable_text(d.get("title", ""), d["text"]) for d in corpus]


def corpus_of(collection: str) -> list[dict]:
    if collection == "amqa+enh":
        return read_jsonl(DATA / "amqa" / "corpus.jsonl") + read_jsonl(DATA / "enh" / "corpus.jsonl")
    return read_jsonl(DATA / collection / "corpus.jsonl")


def queries_of(collection: str) -> dict[str, str]:
    """Test and tuning queries of a collection (tuning ids start with ``t``)."""
    base = "amqa" if collection.startswith("amqa") else collection
    test = {q["id"]: q["text"] for q in read_jsonl(DATA / base / "queries.jsonl")}
    tune, _ = tuning_queries(collection)
    return {**test, **tune}


def run_path(collection: str, window: int, variant: str, tag: str = "") -> Path:
    """Where a run is kept; ``tag`` names a model other than the stand-in (``--tag``)."""
    prefix = f"{tag}-" if tag else ""
    return CACHE / "runs" / f"{prefix}{collection}-w{window}-{variant.replace('+', '_')}.npz"


def load_run(collection: str, window: int, variant: str, tag: str = "") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """query id -> (document rows, scores), best first."""
    path = run_path(collection, window, variant, tag)
    if not path.exists():
        more = f" --model MODEL --tag {tag} --variants {variant}" if tag else ""
        raise SystemExit(f"{path} is missing: run python bench/dense_runs.py --collection {collection} --window {window}{more}")
    with np.load(path) as d:
        scores = d["best"][:, None] - d["gaps"].astype(np.float32) * SCORE_STEP
        return {q: (r.astype(np.int64), s) for q, r, s in zip(d["qids"].tolist(), d["rows"], scores)}


def top(scores: np.ndarray, depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``depth`` of a (queries x documents) score matrix."""
    depth = min(depth, scores.shape[1])
    idx = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    part = np.take_along_axis(scores, idx, 1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(part, order, 1)


def aggregate(passage_scores: np.ndarray, owner: np.ndarray, n_docs: int) -> dict[str, np.ndarray]:
    """Document scores (queries x documents) from passage scores: best passage, sum of the best two."""
    n_q = passage_scores.shape[0]
    best = np.full((n_q, n_docs), -np.inf, dtype=np.float32)
    second = np.full((n_q, n_docs), -np.inf, dtype=np.float32)
    # passages are grouped by document: walk passage positions 0, 1, 2 ... within each document
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    position = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    for k in range(int(position.max()) + 1):
        cols = np.flatnonzero(position == k)
        s = passage_scores[:, cols]
        docs = owner[cols]
        old = best[:, docs]
        second[:, docs] = np.maximum(second[:, docs], np.minimum(old, s))
        best[:, docs] = np.maximum(old, s)
    second = np.where(np.isinf(second), best, second)
    return {"max": best, "sum2": best + second}


def embedding_caches(model_path: str, window: int, precision: str) -> dict[str, EmbeddingCache]:
    """The query and document vector caches of a model (by folder name), length and precision."""
    name = Path(model_path).name
    key_name = f"{name}-{precision}" if precision != "fp32" else name
    return {k: EmbeddingCache(CACHE / "embeddings", model_key(key_name, max_seq_length=window, kind=k)) for k in ("query", "document")}


def embed(model, cache: EmbeddingCache, kind: str, texts: list[str], desc: str, batch_size: int,
          precision: str = "fp32") -> np.ndarray:
    from amharic_search.index.dense import encode

    bar = tqdm(total=len(texts), desc=desc, unit=" texts")

    def progress(done, total):
        bar.n = done
        bar.refresh()

    out = encode_cached(lambda t: encode(model, t, kind=kind, batch_size=batch_size, precision=precision), texts, cache, chunk=1024, progress=progress)
    bar.close()
    return out


@click.command()
@click.option("--collection", type=click.Choice(["enh", "amqa", "amqa+enh"]), default="enh")
@click.option("--window", default=256, show_default=True, help="Encoder max length (tokens).")
@click.option("--model", "model_path", default=str(STAND_IN), show_default=True)
@click.option("--device", default=None, help="cpu, cuda ... (default: sentence-transformers' choice).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--variants", default=",".join(VARIANTS), show_default=True)
@click.option("--chunks", "chunks_path", default=None, help="Passage spans (.npy) to use instead of chunking here.")
@click.option("--save-chunks", is_flag=True, help="Only chunk, and write the spans to --chunks.")
@click.option("--doc-vectors", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Document vectors (.npy, one row per document, in corpus order) made earlier with the same model, "
                   "window and prompt: only the queries are embedded (truncated variant only).")
@click.option("--tag", default="", help="Name the runs of a model other than the stand-in (e.g. a fine-tuned one).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: computed under bf16 autocast on the CPU (vectors stay float32).")
def main(collection, window, model_path, device, batch_size, variants, chunks_path, save_chunks, doc_vectors, tag,
         precision) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from amharic_search.index.chunking import ChunkConfig, chunk_text

    model = SentenceTransformer(model_path, device=device, trust_remote_code=False)
    model.max_seq_length = window
    caches = embedding_caches(model_path, window, precision)
    wanted = variants.split(",")
    need_passages = any(v != "truncated" for v in wanted)
    corpus = corpus_of(collection)
    queries = queries_of(collection)
    tok = model.tokenizer

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    chunk_tokens = min(ChunkConfig().max_tokens, window - 6)
    t0 = time.perf_counter()
    doc_texts = document_texts(corpus)
    if not need_passages and not save_chunks:  # truncated documents only: no chunking
        spans = np.array([(i, 0, len(d["text"])) for i, d in enumerate(corpus)])
    elif chunks_path and Path(chunks_path).exists() and not save_chunks:
        spans = np.load(chunks_path)  # (document, start, length) of every passage, made with --save-chunks
    else:
        spans = np.array([(i, c.start, len(c.text)) for i, d in enumerate(tqdm(corpus, desc="chunking", unit=" docs"))
                          for c in chunk_text(d["text"], config=ChunkConfig(max_tokens=chunk_tokens), count=count)])
        if save_chunks:
            np.save(chunks_path, spans)
            return
    passages = [searchable_text(corpus[i].get("title", ""), corpus[i]["text"][a : a + n]) for i, a, n in spans.tolist()]
    owner = spans[:, 0]
    print(f"{collection}: {len(corpus)} documents, {len(passages)} passages of <= {chunk_tokens} tokens", flush=True)
    dev = torch.device(model.device)
    Q = torch.from_numpy(embed(model, caches["query"], "query", list(queries.values()), "queries", batch_size, precision)).to(dev)
    if doc_vectors:
        if need_passages:
            raise click.UsageError("--doc-vectors gives document vectors only: use it with --variants truncated")
        D = torch.from_numpy(np.load(doc_vectors).astype(np.float32)).to(dev)
        if D.shape[0] != len(corpus):
            raise click.UsageError(f"{doc_vectors} has {D.shape[0]} vectors for {len(corpus)} documents")
    else:
        D = torch.from_numpy(embed(model, caches["document"], "document", doc_texts, "documents", batch_size, precision)).to(dev)
    P = (torch.from_numpy(embed(model, caches["document"], "document", passages, "passages", batch_size, precision)).to(dev)
         if need_passages else None)
    embed_s = time.perf_counter() - t0
    qids = np.array(list(queries))
    results: dict[str, tuple[list, list]] = {v: ([], []) for v in VARIANTS}
    for start in range(0, len(qids), 256):
        q = Q[start : start + 256]
        trunc = (q @ D.T).float().cpu().numpy()
        ranked = {"truncated": trunc}
        if P is not None:  # the passage variants
            agg = aggregate((q @ P.T).float().cpu().numpy(), owner, len(corpus))
            ranked.update(agg, **{"max+truncated": (agg["max"] + trunc) / 2})
        for variant, scores in ranked.items():
            r, s = top(scores)
            results[variant][0].append(r)
            results[variant][1].append(s)
    (CACHE / "runs").mkdir(parents=True, exist_ok=True)
    row_type = np.uint16 if len(corpus) < 2**16 else np.uint32
    for variant, (rows, scores) in results.items():
        if variant not in wanted:
            continue
        scores = np.concatenate(scores)
        gaps = np.clip(np.rint((scores[:, :1] - scores) / SCORE_STEP), 0, 2**16 - 1).astype(np.uint16)
        np.savez(run_path(collection, window, variant, tag), qids=qids, rows=np.concatenate(rows).astype(row_type),
                 best=scores[:, 0], gaps=gaps, passages=len(passages), seconds=embed_s)
    print(f"embedded and ranked in {embed_s:.0f} s on {dev}", flush=True)


if __name__ == "__main__":
    main()
