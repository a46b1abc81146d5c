"""Per-stage query latency and indexing throughput with randomly initialised models of the real
architectures (speed does not depend on the weight values): the fp32 PyTorch baseline.

    python bench/speed.py                      # medium models, writes BENCHMARKS.md "Speed (baseline)"
    python bench/speed.py --size base --queries 5

Architectures (XLM-RoBERTa): medium = 8 layers, hidden 512, 8 heads, FFN 2048, 32k vocabulary
(42M parameters, as rasyosef/reranker-amharic-medium and embedding-amharic-medium); base = 12
layers, hidden 768, 12 heads, FFN 3072. The tokenizer is a 32k Unigram model trained here on the
enh articles, so sequence lengths are those of an Amharic tokenizer. Candidates for reranking are
the query's real BM25 top-100 passages of the enh index; the dense index holds random unit vectors
of the right shape (FAISS speed depends on the shape only).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, load_collection, machine, markdown_table, today, write_section  # noqa: E402

SIZES = {"medium": dict(hidden=512, layers=8, heads=8, ffn=2048), "base": dict(hidden=768, layers=12, heads=12, ffn=3072)}


def build_models(root: Path, size: str, texts: list[str]):
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer, models
    from tiny_models import train_tokenizer
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel

    tok = train_tokenizer(texts, vocab_size=32000, method="sentencepiece")
    spec = SIZES[size]
    cfg = dict(vocab_size=len(tok), hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
               num_attention_heads=spec["heads"], intermediate_size=spec["ffn"], max_position_embeddings=514,
               pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1)
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(**cfg)).save_pretrained(root / "enc_hf")
    tok.save_pretrained(root / "enc_hf")
    transformer = models.Transformer(str(root / "enc_hf"), max_seq_length=510)
    dim = transformer.get_embedding_dimension() if hasattr(transformer, "get_embedding_dimension") else transformer.get_word_embedding_dimension()
    encoder = SentenceTransformer(modules=[transformer, models.Pooling(dim, pooling_mode="mean"), models.Normalize()], device="cpu")
    ce_model = XLMRobertaForSequenceClassification(XLMRobertaConfig(**cfg, num_labels=1))
    ce_model.save_pretrained(root / "ce")
    tok.save_pretrained(root / "ce")
    reranker = CrossEncoder(str(root / "ce"), max_length=510, device="cpu")
    params = sum(p.numel() for p in ce_model.parameters()) / 1e6
    return encoder, reranker, params


def pct(values, q):
    return f"{np.percentile(values, q):.0f}" if values else "-"


@click.command()
@click.option("--size", type=click.Choice(list(SIZES)), default="medium")
@click.option("--variant", type=click.Choice(["after", "baseline"]), default="after", show_default=True,
              help="after: the product's defaults (reranker backend auto, focus window, bf16 encoding where the CPU "
                   "has it); baseline: fp32 PyTorch, passage heads.")
@click.option("--queries", "n_queries", default=20, show_default=True, help="enh queries searched end to end.")
@click.option("--embed-sample", default=256, show_default=True, help="enh passages embedded to measure throughput.")
@click.option("--full-build/--no-full-build", default=False, show_default=True,
              help="Also build the whole enh index with the encoder (dense included) and time it (about 30 min on 2 cores).")
def main(size: str, variant: str, n_queries: int, embed_sample: int, full_build: bool) -> None:
    import torch

    from amharic_search.index.build import build_index
    from amharic_search.index.dense import DenseIndex, choose_engine, choose_precision, encode
    from amharic_search.search import Searcher
    from amharic_search.search.rerank import Reranker

    corpus, queries, _ = load_collection("enh")
    after = variant == "after"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        build_index(DATA / "enh" / "corpus.jsonl", tmp / "idx", dense_model=None, show_progress=False)
        lexical_build = time.perf_counter() - t0
        searcher = Searcher.load(tmp / "idx", reranker=None)
        encoder, _, params = build_models(tmp, size, [d["text"] for d in corpus[:3000]])
        precision = choose_precision("auto", encoder) if after else "fp32"
        engine = choose_engine("auto", encoder, precision) if after else "torch"
        passages = [p.text for p in searcher.collection.passages(range(min(embed_sample, searcher.collection.num_passages)))]
        encode(encoder, passages[:32], kind="document", batch_size=32, precision=precision, engine=engine)  # warm, convert
        t0 = time.perf_counter()
        encode(encoder, passages, kind="document", batch_size=32, precision=precision, engine=engine)
        per_s = len(passages) / (time.perf_counter() - t0)
        n_pass = searcher.collection.num_passages
        dim = encoder.get_embedding_dimension() if hasattr(encoder, "get_embedding_dimension") else encoder.get_sentence_embedding_dimension()
        vecs = np.random.default_rng(0).standard_normal((n_pass, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        searcher.collection.vectors, searcher.first.encoder = DenseIndex.build(vecs), encoder
        reranker = Reranker.load(str(tmp / "ce"), backend="auto" if after else "torch")
        searcher.second.reranker = reranker
        window = "best" if after else "head"

        enc_ms, faiss_ms = [], []
        for q in list(queries.values())[:200]:
            t = time.perf_counter()
            qv = encode(encoder, [q], kind="query")[0]
            enc_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.collection.vectors.search(qv, 900)
            faiss_ms.append((time.perf_counter() - t) * 1000)
        stage = {k: [] for k in ("bm25", "dense", "fusion", "first", "rerank", "total")}
        for q in list(queries.values())[:n_queries]:
            r = searcher.search(q, window=window)
            for k in ("bm25", "dense", "fusion", "rerank", "total"):
                stage[k].append(r.timings_ms[k])
            stage["first"].append(r.timings_ms["bm25"] + r.timings_ms["dense"] + r.timings_ms["fusion"])
        f1 = lambda v: f"{np.percentile(v, 50):.1f}", lambda v: f"{np.percentile(v, 95):.1f}"  # noqa: E731
        rows = [
            ["analysis + BM25 (documents, best passage), depth 300", *(f(stage["bm25"]) for f in f1), f"{n_queries} queries"],
            [f"query encoding ({size} encoder, fp32)", *(f(enc_ms) for f in f1), "200 queries"],
            [f"FAISS exact inner product, {n_pass} x {dim}, 900 passages", *(f(faiss_ms) for f in f1), "200 queries"],
            ["dense stage (encoding + FAISS + best passage per document)", *(f(stage["dense"]) for f in f1), f"{n_queries} queries"],
            ["fusion (z-score sum), 2 x 300 documents", *(f(stage["fusion"]) for f in f1), f"{n_queries} queries"],
            ["**first stage ready (the UI shows it)**", *(f(stage["first"]) for f in f1), f"{n_queries} queries"],
            [f"rerank 100 candidates: {reranker.backend}, window {window}, max length {reranker.max_length}",
             *(f(stage["rerank"]) for f in f1), f"{n_queries} queries"],
            ["**end to end**", *(f(stage["total"]) for f in f1), f"{n_queries} queries"],
        ]
        for r in rows:
            print(r, flush=True)
        indexing = (f"the {size} encoder embeds {per_s:.1f} passages/s in {precision} (batch 32, {len(passages)} enh "
                    f"passages), so the {n_pass} passages of enh take about {n_pass / per_s / 60:.0f} min")
        if full_build:
            encoder.save(str(tmp / "encoder"))
            t0 = time.perf_counter()
            report = build_index(DATA / "enh" / "corpus.jsonl", tmp / "idx-dense", dense_model=str(tmp / "encoder"),
                                 dense_precision="auto" if after else "fp32", show_progress=False)
            total = time.perf_counter() - t0
            tm = report.seconds
            indexing += (
                f". Measured: the whole enh index with the {size} encoder (`build_index`, {report.manifest['dense']['precision']} "
                f"with {report.manifest['dense'].get('engine') or 'torch'}, "
                f"chunked by the encoder's tokenizer into {report.passages} passages) builds in {total / 60:.1f} min: reading + "
                f"chunking {tm['read_chunk']:.0f} s, BM25 {tm['bm25']:.0f} s, embedding + FAISS {tm['dense']:.0f} s "
                f"({report.passages / tm['dense']:.1f} passages/s)"
            )
            print(indexing, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    title = "after" if after else "baseline, fp32 PyTorch"
    body = (
        f"Machine: {machine()}, torch {torch.__version__} with {torch.get_num_threads()} threads. Date: {today()}. "
        f"Rerun: `python bench/speed.py --size {size} --variant {variant}{' --full-build' if full_build else ''}`.\n\n"
        f"Randomly initialised XLM-R models of the {size} architecture ({params:.0f}M parameters in the cross-encoder); "
        f"enh corpus ({n_pass} passages) and test headlines, `Searcher.search` end to end with "
        + ("the product's defaults" if after else "fp32 PyTorch and passage heads") + ".\n\n"
        + markdown_table([f"stage ({size})", "p50 ms", "p95 ms", "measured on"], rows)
        + f"\n\nIndexing: the lexical index of enh builds in {lexical_build:.0f} s; {indexing}. "
        f"Peak resident memory of this benchmark: {peak:.0f} MB.\n"
    )
    write_section(f"Speed ({title}, {size} models)", body)
    print(body)


if __name__ == "__main__":
    main()
