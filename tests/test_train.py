"""Fine-tuning (search.train, `amharic-search train`): pairs files, pairs from titles, hard negatives,
encoder and reranker training with resume, the output model everywhere a model goes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SAMPLE, sample_docs
from amharic_search.search.cli import main
from amharic_search.index.engines import cpu_has_bf16
from amharic_search.search.train import (
    CHECKPOINTS, MiningReport, Pair, PairsError, TitlesReport, TrainConfig, TrainError, TrainingInterrupted,
    mine_negatives, near_duplicate, pairs_from_titles, read_pairs, split_holdout, train_model,
)

FAST = dict(epochs=1, batch_size=8, lr=5e-4, query_length=32, passage_length=64, holdout=0.25, device="cpu",
            precision="fp32")


def title_pairs(n: int = 32) -> list[Pair]:
    return pairs_from_titles(SAMPLE / "corpus.jsonl")[:n]


def write_pairs(path: Path, pairs: list[Pair]) -> Path:
    path.write_text("".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    return path


def weights(model_dir: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def changed(a: dict, b: dict) -> bool:
    import numpy as np

    return any(not np.array_equal(a[k], b[k]) for k in a if k in b)


# -- pairs -------------------------------------------------------------------------------------------


def test_read_pairs_accepts_the_shared_format_and_gzip(tmp_path):
    lines = [{"query": "ሀ ለ", "positive": "መ ሠ ረ", "doc_id": "d1"},
             {"query": "ቀ በ", "positive": "ተ ቸ", "negatives": ["ኀ ነ", ""]},
             {"query": "ኘ አ", "positive": "ከ ኸ", "negative": "ወ ዐ"}]
    path = tmp_path / "pairs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n" + json.dumps(lines[2]) + "\n")
    pairs = read_pairs(path)
    assert [p.line for p in pairs] == [1, 3, 4]
    assert pairs[0].doc_id == "d1" and pairs[1].negatives == ["ኀ ነ"] and pairs[2].negatives == ["ወ ዐ"]


@pytest.mark.parametrize("content, line, words", [
    ('{"query": "a", "positive": "b"}\n{"query": "a"\n', 2, "not valid JSON"),
    ('{"query": "a", "positive": "b"}\n\n{"query": "a", "text": "b"}\n', 3, "no 'positive' field"),
    ('["a", "b"]\n', 1, "expected a JSON object"),
    ('{"query": "", "positive": "b"}\n', 1, "'query' is empty"),
    ('{"query": "a", "positive": 3}\n', 1, "must be a string"),
    ('{"query": "a", "positive": "b", "negatives": 5}\n', 1, "must be a list"),
])
def test_bad_pairs_files_name_the_line(tmp_path, content, line, words):
    path = tmp_path / "pairs.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PairsError) as err:
        read_pairs(path)
    assert f"{path}:{line}:" in str(err.value) and words in str(err.value)


def test_empty_or_missing_pairs_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(PairsError, match="no pairs"):
        read_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(PairsError, match="no such file"):
        read_pairs(tmp_path / "nope.jsonl")


def test_pairs_from_titles_counts_what_it_skips(tmp_path):
    body = "የጤና ሚኒስቴር በቆላማ አካባቢዎች የወባ በሽታን ለመከላከል አዲስ ዘመቻ ጀመረ " * 3
    docs = [
        {"id": "ok", "title": "አዲስ የወባ ዘመቻ", "text": body},
        {"id": "empty", "title": "", "text": body},
        {"id": "short", "title": "ወባ", "text": body},
        {"id": "copied", "title": "የወባ በሽታን ለመከላከል", "text": body},
        {"id": "tiny-body", "title": "ሌላ ረጅም ርዕስ", "text": "ሁለት ቃላት"},
        {"id": "again", "title": "አዲስ የወባ ዘመቻ", "text": body + " ተጨማሪ"},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    report = TitlesReport()
    pairs = pairs_from_titles(corpus, report=report)
    assert [(p.query, p.doc_id) for p in pairs] == [("አዲስ የወባ ዘመቻ", "ok")]
    assert report.documents == 6 and report.pairs == 1
    assert report.skipped == {"without a title": 1, "with a too short title": 1, "whose title is in the body verbatim": 1,
                              "with a too short body": 1, "with a repeated title": 1}
    # the sample corpus: every document has a title; the ones copied into their bodies are skipped
    report = TitlesReport()
    sample = pairs_from_titles(SAMPLE / "corpus.jsonl", report=report)
    assert sample and report.documents == len(sample_docs()) == report.pairs + sum(report.skipped.values())
    assert all(p.query not in p.positive for p in sample)


def test_holdout_split_is_seeded_and_keeps_passages_on_one_side():
    pairs = title_pairs(40) + [Pair("ሌላ ጥያቄ", title_pairs(1)[0].positive)]
    train, held = split_holdout(pairs, 0.25, seed=3)
    assert (train, held) == split_holdout(pairs, 0.25, seed=3)
    assert 9 <= len(held) <= 12 and len(train) + len(held) == len(pairs)
    assert not {p.positive for p in train} & {p.positive for p in held}


# -- hard negatives --------------------------------------------------------------------------------


def test_hard_negative_mining_excludes_the_positive(sample_index):
    docs = {d["id"]: d for d in sample_docs()}
    pairs = title_pairs(12)
    report = MiningReport()
    mined = mine_negatives(pairs, sample_index, negatives=4, depth=20, report=report)
    assert report.mined > 0 and report.excluded_positive > 0 and report.stages == ["bm25", "dense"]
    for pair, out in zip(pairs, mined):
        assert out.query == pair.query and len(out.negatives) <= 4
        own = docs[pair.doc_id]["text"]
        for neg in out.negatives:
            assert neg not in own and not near_duplicate(neg, own)
    # without doc ids the positive is still recognized (its passages are near-duplicates of it)
    anonymous = [Pair(p.query, p.positive) for p in pairs]
    for pair, out in zip(pairs, mine_negatives(anonymous, sample_index, negatives=4, depth=20)):
        assert all(neg not in docs[pair.doc_id]["text"] for neg in out.negatives)


def test_near_duplicate():
    text = "የጤና ሚኒስቴር በቆላማ አካባቢዎች የወባ በሽታን ለመከላከል አዲስ ዘመቻ ጀመረ"
    assert near_duplicate(text, "መግቢያ። " + text + " መጨረሻ።")
    assert not near_duplicate("የቡና ምርት በዚህ ዓመት በከፍተኛ ሁኔታ ጨምሯል ተብሏል", text)


# -- training --------------------------------------------------------------------------------------


def test_encoder_training_resumes_and_loads_everywhere(tiny_models, tmp_path):
    from amharic_search.index.models import load_encoder

    base = tiny_models["encoder"]
    out = tmp_path / "encoder"
    config = TrainConfig(base=str(base), **FAST)
    pairs = title_pairs(40)
    lines: list[str] = []
    with pytest.raises(TrainingInterrupted) as err:  # as Ctrl-C would: a checkpoint, then a stop
        train_model("encoder", pairs, out, config, stop_after=1, log=lines.append)
    assert err.value.step == 1 and (out / CHECKPOINTS / "checkpoint-1").is_dir()
    assert any(line.startswith("before:") for line in lines)

    with pytest.raises(TrainError, match="other data or settings.*lr"):
        train_model("encoder", pairs, out, TrainConfig(base=str(base), **{**FAST, "lr": 1e-4}), log=lines.append)

    result = train_model("encoder", pairs, out, config, log=lines.append)
    assert result.resumed_from == 1 and result.steps == 4  # 30 training pairs, batches of 8
    assert set(result.before) == set(result.after) == {"MRR@10", "Recall@1", "Recall@10"}
    assert any(line.startswith("after:") for line in lines)
    assert changed(weights(base), weights(out))
    assert not (out / CHECKPOINTS).exists()
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert str(base) in card and "Before / after" in card and "fine-tuned |" in card
    info = json.loads((out / "training.json").read_text())
    assert info["counts"]["train"] == 30 and info["counts"]["heldout"] == 10

    model = load_encoder(str(out))  # the normal model path
    assert model.max_seq_length == load_encoder(str(base)).max_seq_length  # the base's inference length is kept
    with pytest.raises(TrainError, match="already holds a trained model"):
        train_model("encoder", pairs, out, config)

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sample_docs()[:20]), encoding="utf-8")
    res = CliRunner().invoke(main, ["index", "build", str(corpus), "--out", str(tmp_path / "idx"),
                                    "--dense-model", str(out), "--strict"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["dense"]["model"] == str(out)


def test_reranker_training_from_the_cli(tiny_models, sample_index, tmp_path):
    from amharic_search.index.models import load_cross_encoder

    pairs = write_pairs(tmp_path / "pairs.jsonl", title_pairs(32))
    out = tmp_path / "reranker"
    res = CliRunner().invoke(main, [
        "train", "reranker", "--pairs", str(pairs), "--base", str(tiny_models["reranker"]), "--out", str(out),
        "--index", str(sample_index), "--negatives", "2", "--negative-depth", "10", "--max-length", "64",
        "--batch-size", "16", "--lr", "5e-4", "--holdout", "0.25", "--device", "cpu", "--loss", "listwise",
        "--micro-batch", "24",
    ])
    assert res.exit_code == 0, res.output
    assert "before" in res.output and "after" in res.output and "MRR@10" in res.output
    assert "112 scored per step, 24 at a time (--micro-batch)" in res.output  # 16 x (1 + 2 + 4 in-batch)
    assert "hard negatives for 24 pairs" in res.output
    assert changed(weights(tiny_models["reranker"]), weights(out))
    info = json.loads((out / "training.json").read_text())
    assert info["counts"]["negatives_per_pair"] == 2 and info["counts"]["mined_negatives"] > 0
    # the held-out pairs get hard negatives too: distractors, not only the other held-out positives
    counts = info["counts"]
    assert counts["heldout"] == 8 and counts["heldout_mined"] > 0 and counts["eval_passages"] > counts["heldout"]
    assert info["settings"]["loss"] == "listwise"
    model = load_cross_encoder(str(out))
    assert model.predict([("የወባ በሽታ", "የጤና ሚኒስቴር የወባ በሽታን ለመከላከል")]).shape == (1,)

    res = CliRunner().invoke(main, ["query", str(sample_index), "የወባ በሽታ", "--reranker", str(out), "--json",
                                    "--reranker-backend", "torch", "--strict"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["reranked"] is True


def test_reranker_from_titles_with_bce(tiny_models, tmp_path):
    out = tmp_path / "reranker"
    res = CliRunner().invoke(main, [
        "train", "reranker", "--from-titles", str(SAMPLE / "corpus.jsonl"), "--base", str(tiny_models["reranker"]),
        "--out", str(out), "--pair-length", "32", "--batch-size", "32", "--negatives", "1", "--max-steps", "3",
        "--device", "cpu",
    ])
    assert res.exit_code == 0, res.output
    assert "pairs from 143 documents (skipped:" in res.output and "whose title is in the body verbatim" in res.output
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 3 and info["counts"]["random_negatives"] > 0 and info["settings"]["loss"] == "bce"


def test_cli_errors_are_one_clear_line(tiny_models, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "positive": "b"}\n{"query": "c", "answer": "d"}\n', encoding="utf-8")
    res = runner.invoke(main, ["train", "encoder", "--pairs", str(bad), "--base", str(tiny_models["encoder"]),
                               "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and f"{bad}:2: no 'positive' field" in res.output and "Traceback" not in res.output

    good = write_pairs(tmp_path / "good.jsonl", title_pairs(8))
    res = runner.invoke(main, ["train", "encoder", "--pairs", str(good), "--base", str(tmp_path / "no-such-model"),
                               "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "is not available" in res.output and "--base" in res.output
    assert not (tmp_path / "o").exists()

    res = runner.invoke(main, ["train", "encoder", "--base", str(tiny_models["encoder"]), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--pairs FILE" in res.output

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    res = runner.invoke(main, ["train", "reranker", "--pairs", str(good), "--base", str(tiny_models["reranker"]),
                               "--out", str(other)])
    assert res.exit_code == 1 and "holds other files" in res.output
    assert (other / "notes.txt").exists()


def test_eval_from_judged_queries(tiny_models, sample_index):
    from amharic_search.index.models import load_encoder
    from amharic_search.search.train import eval_from_qrels, evaluate_encoder

    ev = eval_from_qrels(SAMPLE / "queries.jsonl", SAMPLE / "qrels.tsv", sample_index, depth=10)
    assert ev.queries and len(ev.queries) == len(ev.relevant) == len(ev.candidates)
    assert all(rel <= set(c) for rel, c in zip(ev.relevant, ev.candidates))
    metrics = evaluate_encoder(load_encoder(str(tiny_models["encoder"])), ev)
    assert set(metrics) == {"MRR@10", "Recall@1", "Recall@10"} and 0 <= metrics["MRR@10"] <= 1


# -- precision, lengths, frozen layers, resuming, the loss ---------------------------------------------


needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU does not compute bfloat16 natively")


@pytest.mark.parametrize("kind, precision, dtype", [
    ("encoder", "fp32", "float32"),
    pytest.param("encoder", "bf16", "bfloat16", marks=needs_bf16),
    pytest.param("reranker", "bf16", "bfloat16", marks=needs_bf16),
])
def test_a_tiny_model_trains_in_each_precision(tiny_models, tmp_path, kind, precision, dtype):
    pairs = write_pairs(tmp_path / "pairs.jsonl", title_pairs(24))
    out = tmp_path / f"{kind}-{precision}"
    length = ["--passage-length", "32"] if kind == "encoder" else ["--pair-length", "48"]
    res = CliRunner().invoke(main, ["train", kind, "--pairs", str(pairs), "--base", str(tiny_models[kind]), "--out",
                                    str(out), "--precision", precision, "--batch-size", "8", *length, "--max-steps", "2",
                                    "--holdout", "0", "--negatives", "1", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"training in {precision} on cpu" in res.output
    info = json.loads((out / "training.json").read_text())
    assert info["settings"]["precision"] == precision and info["computed_in"] == dtype  # what really ran
    assert {str(v.dtype) for v in weights(out).values()} == {"float32"}  # fp32 master weights, saved as they are
    assert f"| precision | {precision} (computed in {dtype}" in (out / "README.md").read_text(encoding="utf-8")


def test_an_unsupported_precision_is_a_clear_error(tiny_models, tmp_path, monkeypatch):
    import amharic_search.index.engines as index_engines
    from amharic_search.search.train import choose_precision

    monkeypatch.setattr(index_engines, "cpu_has_bf16", lambda: False)  # a CPU without AVX-512 BF16 or AMX
    assert choose_precision("auto", "cpu") == "fp32"
    pairs = write_pairs(tmp_path / "pairs.jsonl", title_pairs(8))
    out = tmp_path / "o"
    args = ["train", "encoder", "--pairs", str(pairs), "--base", str(tiny_models["encoder"]), "--out", str(out),
            "--device", "cpu", "--precision"]
    res = CliRunner().invoke(main, [*args, "bf16"])
    assert res.exit_code == 1 and "does not compute bfloat16 natively" in res.output and "--precision fp32" in res.output
    assert "Traceback" not in res.output and not out.exists()
    res = CliRunner().invoke(main, [*args, "fp16"])
    assert res.exit_code == 2 and "'fp16' is not one of 'auto', 'fp32', 'bf16'" in res.output
    with pytest.raises(TrainError, match="'fp16': choose one of auto, fp32, bf16"):
        train_model("encoder", title_pairs(8), out, TrainConfig(base=str(tiny_models["encoder"]), precision="fp16"))


def test_queries_passages_and_pairs_are_cut_at_their_own_lengths(tiny_models, tmp_path, monkeypatch):
    from amharic_search.search.train import trainer as trainer_module

    widths: list[int] = []
    load = trainer_module._load_base

    def spy(kind, base, device):  # the token width of every text the network reads while training
        model = load(kind, base, device)
        network = model[0].auto_model if kind == "encoder" else model.model
        network.base_model.embeddings.register_forward_hook(
            lambda module, args, output: widths.append(output.shape[1]) if module.training else None)
        return model

    monkeypatch.setattr(trainer_module, "_load_base", spy)
    config = dict(FAST, holdout=0, negatives=0, max_steps=2, query_length=8, passage_length=24, pair_length=40)
    train_model("encoder", title_pairs(16), tmp_path / "encoder", TrainConfig(base=str(tiny_models["encoder"]), **config))
    queries, passages = widths[0::2], widths[1::2]  # the loss reads the query column, then the passage column
    assert len(widths) == 4 and max(queries) == 8 and passages == [24, 24]
    widths.clear()
    train_model("reranker", title_pairs(16), tmp_path / "reranker", TrainConfig(base=str(tiny_models["reranker"]),
                                                                                **{**config, "negatives": 1}))
    assert len(widths) == 2 and widths == [40, 40]  # (title, body) pairs: the body is long


def test_frozen_layers_stay_as_they_were(tiny_models, tmp_path):
    import numpy as np

    base = tiny_models["encoder"]
    out = tmp_path / "frozen"
    train_model("encoder", title_pairs(16), out, TrainConfig(base=str(base), **{**FAST, "holdout": 0, "freeze_layers": 1}))
    before, after = weights(base), weights(out)
    frozen = [k for k in before if "embeddings." in k or ".layer.0." in k]
    trained = [k for k in before if ".layer.1." in k]
    assert frozen and trained and all(np.array_equal(before[k], after[k]) for k in frozen)
    assert any(not np.array_equal(before[k], after[k]) for k in trained)
    assert "the first 1 layers" in (out / "README.md").read_text(encoding="utf-8")
    with pytest.raises(TrainError, match="has 2 layers"):
        train_model("encoder", title_pairs(16), tmp_path / "all", TrainConfig(base=str(base), **{**FAST, "freeze_layers": 2}))


def test_a_resumed_run_equals_an_uninterrupted_one(tiny_models, tmp_path):
    import numpy as np

    config = TrainConfig(base=str(tiny_models["encoder"]), **{**FAST, "holdout": 0})
    pairs = title_pairs(40)  # 5 steps
    train_model("encoder", pairs, tmp_path / "whole", config)
    with pytest.raises(TrainingInterrupted):
        train_model("encoder", pairs, tmp_path / "parts", config, stop_after=2)
    resumed = train_model("encoder", pairs, tmp_path / "parts", config)
    assert resumed.resumed_from == 2 and resumed.steps == 5
    whole, parts = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert whole.keys() == parts.keys()
    assert all(np.allclose(whole[k], parts[k], rtol=0, atol=1e-6) for k in whole)


@pytest.mark.parametrize("loss, negatives, micro", [("bce", 2, 5), ("listwise", 2, 7)])
def test_a_micro_batch_bounds_each_forward_pass_with_the_same_training(tiny_models, tmp_path, loss, negatives, micro):
    """A step of 8 pairs with 2 negatives each (bce: 8 rows; listwise: 8 x (1 + 2 + 4 in-batch) = 56
    pairs) scored at most ``micro`` pairs at a time, with at most ``micro`` pairs' activations held at once,
    trains as the same step in one piece does."""
    import shutil

    import numpy as np
    import torch

    base = tmp_path / "base"  # the tiny reranker without dropout, so both runs draw the same numbers
    shutil.copytree(tiny_models["reranker_spread"], base)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0,
                                                  "attention_probs_dropout_prob": 0.0}))
    vocab = config["vocab_size"]
    # the memory a step holds: pairs whose activations are kept for the backward pass at one time
    held = {"now": 0, "peak": 0, "scored": 0}
    forward = torch.nn.Embedding.forward

    def counting(self, ids):
        out = forward(self, ids)
        if self.num_embeddings == vocab and out.requires_grad:  # the word embeddings, with a graph kept
            n = ids.shape[0]
            held["now"] += n
            held["scored"] += n
            held["peak"] = max(held["peak"], held["now"])
            out.register_hook(lambda grad: held.__setitem__("now", held["now"] - n))
        return out

    titled = title_pairs(16)  # each with the next two pairs' passages as its negatives
    pairs = [Pair(p.query, p.positive, [titled[(i + 1) % 16].positive, titled[(i + 2) % 16].positive])
             for i, p in enumerate(titled)]
    runs = {}
    for name, micro_batch in (("whole", 512), ("parts", micro)):
        held.update(now=0, peak=0, scored=0)
        torch.nn.Embedding.forward = counting
        try:
            config = TrainConfig(base=str(base), **{**FAST, "holdout": 0, "batch_size": 8, "micro_batch": micro_batch,
                                                    "pair_length": 32, "negatives": negatives, "loss": loss,
                                                    "epochs": 2})
            lines: list[str] = []
            runs[name] = train_model("reranker", pairs, tmp_path / name, config, log=lines.append)
            runs[name].info["log"] = lines
        finally:
            torch.nn.Embedding.forward = forward
        runs[name].info["held"] = dict(held)
        assert runs[name].info["counts"]["negatives_per_pair"] == negatives
    whole, parts = runs["whole"].info["held"], runs["parts"].info["held"]
    assert whole["peak"] == (8 if loss == "bce" else 56) and parts["peak"] <= micro
    assert parts["scored"] >= whole["scored"] > 0  # every pair scored, in parts (listwise: once more, without a graph)
    assert runs["whole"].steps == runs["parts"].steps
    said = f"{8 if loss == 'bce' else 56} scored per step"
    assert any(said in line and "at a time" not in line for line in runs["whole"].info["log"])
    assert any(f"{said}, {micro} at a time (--micro-batch)" in line for line in runs["parts"].info["log"])
    # the same training: the same loss at every step (each step's loss depends on every earlier update); the
    # weights differ only where Adam scales float noise up (a gradient that is zero in exact arithmetic)
    curve = lambda run: [value for _, value in run.info["loss_curve"]]  # noqa: E731
    assert len(curve(runs["whole"])) == runs["whole"].steps >= 4 and len(set(curve(runs["whole"]))) > 1
    assert np.allclose(curve(runs["whole"]), curve(runs["parts"]), rtol=0, atol=2e-4)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert changed(weights(base), a) and all(np.allclose(a[k], b[k], rtol=0, atol=1e-3) for k in a)
    with pytest.raises(TrainError, match="--micro-batch must be at least 1"):
        train_model("reranker", pairs, tmp_path / "none", TrainConfig(base=str(base), **{**FAST, "micro_batch": 0}))


def test_the_loss_goes_down(tiny_models, tmp_path):
    config = TrainConfig(base=str(tiny_models["encoder"]), **{**FAST, "epochs": 4, "holdout": 0})
    result = train_model("encoder", title_pairs(32), tmp_path / "o", config)
    curve = [loss for _, loss in result.info["loss_curve"]]  # 4 epochs of 4 steps, each step logged
    assert len(curve) == 16
    assert sum(curve[-4:]) < 0.9 * sum(curve[:4])  # the last epoch against the first (seeded: about 0.8)


# -- from an index's own documents; the page's background job (search.train.adapt) ------------------------


def test_pairs_from_index_are_the_pairs_of_its_corpus(lexical_index, tmp_path):
    from amharic_search.index.manifest import IndexFormatError
    from amharic_search.search.train import pairs_from_index

    report, expected = TitlesReport(), TitlesReport()
    pairs = pairs_from_index(lexical_index, report=report)
    assert [p.to_dict() for p in pairs] == [p.to_dict() for p in pairs_from_titles(SAMPLE / "corpus.jsonl", report=expected)]
    assert (report.documents, report.pairs, report.skipped) == (expected.documents, expected.pairs, expected.skipped)
    with pytest.raises(IndexFormatError):
        pairs_from_index(tmp_path)


def test_adapt_stops_on_request_continues_and_rebuilds_with_the_index_settings(tiny_models, tmp_path):
    from amharic_search.index.build import build_index
    from amharic_search.index.chunking import ChunkConfig
    from amharic_search.index.manifest import read_manifest, update_manifest
    from amharic_search.search.train import adapt

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sample_docs()[:40]), encoding="utf-8")
    index = tmp_path / "indexes" / "titled"
    build_index(corpus, index, dense_model=str(tiny_models["encoder"]), chunking=ChunkConfig(max_tokens=60, overlap=0),
                show_progress=False)
    update_manifest(index, fusion={"method": "weighted", "weights": {"bm25": 0.7, "dense": 0.3}})
    assert adapt.unavailable(index, read_manifest(index)) is None
    config = TrainConfig(base="replaced by the index's encoder", **FAST)

    job = adapt.start_adapt(index, config=config)
    job.stop()  # as the page's Stop button: after the current step, with a checkpoint
    assert job.wait(120) and job.state == "stopped", (job.error, job.detail)
    assert (job.done, job.total) == (1, 4) and adapt.unfinished_run(index) == job.model
    assert adapt.latest_model(index) is None

    again = adapt.start_adapt(index, config=config)
    assert again.wait(120) and again.state == "done", (again.error, again.detail)
    assert again.model == job.model and (again.done, again.total) == (4, 4) and again.before and again.after
    info = adapt.training_info(again.model)
    assert info["resumed_from"] == 1 and info["base"] == str(tiny_models["encoder"])
    assert info["adapted_index"] == str(index.resolve()) and "titles and bodies" in info["source"]
    assert adapt.latest_model(index) == again.model and adapt.unfinished_run(index) is None

    old = read_manifest(index)
    report = adapt.rebuild_with_encoder(index, again.model)
    new = read_manifest(index)
    assert new["dense"]["model"] == str(again.model) and adapt.in_use(new, again.model)
    assert report.embedded == report.passages == old["corpus"]["passages"] > 40  # only the embeddings changed
    for key in ("corpus", "analyzer", "bm25", "fusion", "name", "examples"):
        assert new[key] == old[key], key
    assert {**new["chunking"], "token_counter": ""} == {**old["chunking"], "token_counter": ""}  # the same tokenizer
    assert new["dense"]["fingerprint"] != old["dense"]["fingerprint"]


def test_adapt_estimates_from_measured_rates_and_keeps_to_a_budget(tiny_models, tmp_path, monkeypatch):
    from amharic_search.index.build import build_index
    from amharic_search.search.train import adapt

    monkeypatch.setenv("AMHARIC_SEARCH_CACHE", str(tmp_path / "cache"))  # this machine's recorded rates
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sample_docs()[:40]), encoding="utf-8")
    index = tmp_path / "indexes" / "titled"
    build_index(corpus, index, dense_model=str(tiny_models["encoder"]), show_progress=False)
    config = TrainConfig(base="replaced by the index's encoder", **FAST)

    assert adapt.estimate(index, config=config) is None  # nothing measured on this machine yet
    est = adapt.estimate(index, config=config, measure=True)
    assert est.rates.source == "measured" and est.rates.step_seconds > 0 and est.rates.mining_seconds > 0
    assert (est.titles, est.train_pairs, est.heldout, est.steps) == (38, 28, 10, 4)  # batches of 8
    assert est.seconds == est.fixed_seconds + 4 * est.rates.step_seconds and est.fixed_seconds > 0
    assert adapt.estimate(index, config=config).rates == est.rates  # recorded: no second measurement
    assert est.steps_for(est.seconds_for(2) + est.rates.step_seconds / 2) == 2 and est.steps_for(1e9) == 4

    job = adapt.start_adapt(index, config=config, budget_s=est.seconds_for(2) + est.rates.step_seconds / 2)
    assert job.wait(120) and job.state == "done", (job.error, job.detail)
    info = adapt.training_info(job.model)
    assert info["steps"] == 2 and info["settings"]["max_steps"] == 2  # a whole run over the steps that fit
    assert adapt.estimate(index, config=config).rates.source == "run"  # the run's own pace is this machine's now

    job = adapt.start_adapt(index, config=config, budget_s=0.01)
    assert job.wait(60) and (job.state, job.error) == ("failed", "budget")
