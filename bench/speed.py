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

    tok = train_tokenizer(texts, vocab_size=32000)
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
@click.option("--queries", "n_queries", default=10, show_default=True, help="enh queries timed per setting.")
@click.option("--embed-sample", default=256, show_default=True, help="enh passages embedded to measure throughput.")
def main(size: str, n_queries: int, embed_sample: int) -> None:
    import faiss
    import torch

    from index.build import build_index
    from index.dense import DenseIndex, encode
    from search import Searcher
    from search.fusion import FusionConfig, ranked

    corpus, queries, _ = load_collection("enh")
    qtexts = list(queries.values())[:n_queries]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        build_index(DATA / "enh" / "corpus.jsonl", tmp / "idx", dense_model=None, show_progress=False)
        lexical_build = time.perf_counter() - t0
        searcher = Searcher.load(tmp / "idx", reranker=None)
        encoder, reranker, params = build_models(tmp, size, [d["text"] for d in corpus[:3000]])

        # indexing throughput of the encoder on real passages
        passages = [p.text for p in searcher.store.passages(range(min(embed_sample, searcher.store.num_passages)))]
        t0 = time.perf_counter()
        encode(encoder, passages, kind="document", batch_size=32)
        per_s = len(passages) / (time.perf_counter() - t0)
        n_pass = searcher.store.num_passages

        dim = encoder.get_embedding_dimension() if hasattr(encoder, "get_embedding_dimension") else encoder.get_sentence_embedding_dimension()
        vecs = np.random.default_rng(0).standard_normal((n_pass, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        dense = DenseIndex.build(vecs)

        lex, enc_ms, faiss_ms, fuse_ms = [], [], [], []
        cands = {}
        for q in list(queries.values())[:200]:
            t = time.perf_counter()
            terms = searcher.analyzer.tokens(q)
            lrows, lscores = searcher.lexical(terms, 200)
            lex.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            qv = encode(encoder, [q], kind="query")[0]
            enc_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            drows, dscores = dense.search(qv, 200)
            faiss_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            fused = ranked(FusionConfig().fuse({"bm25": (lrows.tolist(), lscores.tolist()), "dense": (drows.tolist(), dscores.tolist())}))
            fuse_ms.append((time.perf_counter() - t) * 1000)
            cands[q] = lrows[:100].tolist()
        rows.append(["analysis + BM25 (documents, best passage), depth 200", pct(lex, 50), pct(lex, 95), "200 queries"])
        rows.append([f"query encoding ({size} encoder)", pct(enc_ms, 50), pct(enc_ms, 95), "200 queries"])
        rows.append([f"FAISS exact inner product, {n_pass} × {dim}", f"{np.percentile(faiss_ms, 50):.1f}", f"{np.percentile(faiss_ms, 95):.1f}", "200 queries"])
        rows.append(["fusion (z-score sum), 2 × 200", f"{np.percentile(fuse_ms, 50):.1f}", f"{np.percentile(fuse_ms, 95):.1f}", "200 queries"])

        from index.build import searchable_text

        for max_length in (512, 256, 128):
            reranker.max_length = max_length
            times = []
            for q in qtexts:
                ps = searcher.store.passages(cands[q])
                pairs = [(q, searchable_text(p.title, p.text)) for p in ps]
                order = np.argsort([-len(b) for _, b in pairs])
                t = time.perf_counter()
                reranker.predict([pairs[i] for i in order], batch_size=16, show_progress_bar=False)
                times.append((time.perf_counter() - t) * 1000)
            rows.append([f"rerank 100 candidates, fp32 torch, max length {max_length}", pct(times, 50), pct(times, 95), f"{len(qtexts)} queries"])
            print(rows[-1], flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = (
        f"Machine: {machine()}, torch {torch.__version__} with {torch.get_num_threads()} threads. Date: {today()}. "
        f"Rerun: `python bench/speed.py --size {size}`.\n\n"
        f"Randomly initialised XLM-R models of the {size} architecture ({params:.0f}M parameters in the cross-encoder); "
        "enh corpus and test headlines. This is the baseline before any speed work.\n\n"
        + markdown_table([f"stage ({size})", "p50 ms", "p95 ms", "measured on"], rows)
        + f"\n\nIndexing: the lexical index of enh builds in {lexical_build:.0f} s; the {size} encoder embeds "
        f"{per_s:.1f} passages/s (batch 32, {len(passages)} enh passages), so the {n_pass} passages of enh would take "
        f"about {n_pass / per_s / 60:.0f} min. Peak resident memory of this benchmark: {peak:.0f} MB.\n"
    )
    write_section(f"Speed (baseline, {size} models)", body)
    print(body)


if __name__ == "__main__":
    main()
