"""Cross-encoder backends on this CPU: fp32 PyTorch vs ONNX Runtime fp32 vs ONNX Runtime dynamic int8.

    pip install -e ".[speed]" && python bench/rerank_backends.py

Exploratory timing only (random weights of the medium architecture, so no fidelity figures: those
need a trained cross-encoder). 100 (query, passage) pairs per call, enh headlines and their BM25
top-100 passages, length-sorted batches of 16, as the product scores them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, load_collection, machine, markdown_table, today, write_section  # noqa: E402


def export_onnx(model, tokenizer, path: Path) -> None:
    import torch

    model.eval()
    enc = tokenizer([("ቡና", "የቡና ምርት")], return_tensors="pt")
    torch.onnx.export(
        model, (enc["input_ids"], enc["attention_mask"]), str(path), input_names=["input_ids", "attention_mask"],
        output_names=["logits"], dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                                "logits": {0: "b"}}, opset_version=17, dynamo=False,
    )


def ort_scorer(path: Path, tokenizer, max_length: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 0
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def score(pairs, batch_size=16):
        out = []
        for i in range(0, len(pairs), batch_size):
            enc = tokenizer(pairs[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="np")
            out.append(sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                       "attention_mask": enc["attention_mask"].astype(np.int64)})[0][:, 0])
        logits = np.concatenate(out)
        return 1 / (1 + np.exp(-logits))  # the CrossEncoder's default activation for one label

    return score


@click.command()
@click.option("--queries", "n_queries", default=5, show_default=True)
def main(n_queries: int) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import CrossEncoder
    from tiny_models import train_tokenizer
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from index.build import build_index, searchable_text
    from search import Searcher

    corpus, queries, _ = load_collection("enh")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_index(DATA / "enh" / "corpus.jsonl", tmp / "idx", dense_model=None, show_progress=False)
        searcher = Searcher.load(tmp / "idx", reranker=None)
        tok = train_tokenizer([d["text"] for d in corpus[:3000]], vocab_size=32000)
        cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                               intermediate_size=2048, max_position_embeddings=514, pad_token_id=tok.pad_token_id,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1, num_labels=1)
        model = XLMRobertaForSequenceClassification(cfg)
        model.save_pretrained(tmp / "ce")
        tok.save_pretrained(tmp / "ce")
        export_onnx(model, tok, tmp / "ce.onnx")
        quantize_dynamic(str(tmp / "ce.onnx"), str(tmp / "ce.int8.onnx"), weight_type=QuantType.QInt8)
        ce = CrossEncoder(str(tmp / "ce"), device="cpu")
        pair_sets = []
        for q in list(queries.values())[:n_queries]:
            rows_, _ = searcher.lexical(searcher.analyzer.tokens(q), 100)
            ps = [(q, searchable_text(p.title, p.text)) for p in searcher.store.passages(rows_.tolist())]
            pair_sets.append(sorted(ps, key=lambda pr: -len(pr[1])))
        for max_length in (512, 256, 128):
            ce.max_length = max_length
            backends = {
                "torch fp32": lambda pairs: ce.predict(pairs, batch_size=16, show_progress_bar=False),
                "onnxruntime fp32": ort_scorer(tmp / "ce.onnx", tok, max_length),
                "onnxruntime int8 (dynamic)": ort_scorer(tmp / "ce.int8.onnx", tok, max_length),
            }
            reference = None
            for name, fn in backends.items():
                fn(pair_sets[0][:16])  # warm-up
                times, outs = [], []
                for pairs in pair_sets:
                    t = time.perf_counter()
                    outs.append(np.asarray(fn(pairs)).reshape(-1))
                    times.append((time.perf_counter() - t) * 1000)
                if reference is None:
                    reference = outs
                diff = max(float(np.max(np.abs(o - r))) for o, r in zip(outs, reference))
                rows.append([max_length, name, f"{np.percentile(times, 50):.0f}", f"{diff:.2e}"])
                print(rows[-1], flush=True)
    body = (
        f"Machine: {machine()}. Date: {today()}. Rerun: `pip install -e '.[speed]' && python bench/rerank_backends.py`.\n\n"
        f"Exploratory: one randomly initialised cross-encoder of the medium architecture exported with torch.onnx "
        f"and quantized with onnxruntime's dynamic int8; {n_queries} enh headlines × their 100 BM25 passages. "
        "*max abs diff* compares raw scores with torch fp32 on the same pairs (random weights: says nothing about "
        "ranking fidelity, which needs a trained model).\n\n"
        + markdown_table(["max length", "backend", "p50 ms / 100 pairs", "max abs diff vs torch"], rows)
    )
    write_section("Reranker backends (exploratory)", body)


if __name__ == "__main__":
    main()
