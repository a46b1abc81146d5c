"""Reranker backends (PyTorch fp32 / bf16, ONNX Runtime fp32 / int8) and the focus window."""

from __future__ import annotations

import os

import numpy as np
import pytest

from amharic_search.index.analyzer import Analyzer
from amharic_search.index.models import ModelUnavailableError
from amharic_search.search.rerank import Reranker, choose_backend, cpu_has_bf16, focus_window

PASSAGES = [
    "የቡና ምርት በኢትዮጵያ በዚህ ዓመት ጨምሯል። ገበሬዎች ደስተኞች ናቸው።",
    "ጤና ጣቢያ በገጠር ተከፈተ። የወባ በሽታ መከላከያ ተሰጠ።",
    "አጭር",
    "የአዲስ አበባ ከተማ አስተዳደር አዲስ መንገድ ሠራ። " * 6,
    "ስለ ቡና ሥነ ሥርዓት የተጻፈ ረጅም ታሪክ ነው። " * 4,
]


def words(text: str) -> int:
    return len(text.split())


def test_focus_window_sends_the_matching_sentences():
    a = Analyzer()
    text = "መንገዱ ተሠራ። ዝናብ ዘነበ። ገበያው ተከፈተ። የቡና ምርት ጨመረ። ቡና ላኪዎች ተደሰቱ። ሌላ ዜና።"
    got = focus_window(text, set(a.tokens("የቡና ምርት")), 7, analyze=a.tokens, count=words)
    assert got == "የቡና ምርት ጨመረ። ቡና ላኪዎች ተደሰቱ።"
    assert words(got) <= 7


def test_focus_window_keeps_text_that_fits_or_does_not_match():
    a = Analyzer()
    text = "መንገዱ ተሠራ። ዝናብ ዘነበ። ገበያው ተከፈተ።"
    assert focus_window(text, set(a.tokens("ቡና")), 100, analyze=a.tokens, count=words) == text
    assert focus_window(text, set(a.tokens("ቡና")), 3, analyze=a.tokens, count=words) == text  # no match: the head
    assert focus_window(text, set(), 3, analyze=a.tokens, count=words) == text


def test_searcher_window_changes_what_the_reranker_reads(searcher):
    """With a short max length, ``best`` feeds the long malaria guide's matching sentences, ``head`` its start."""
    passages = [p for p in searcher.collection.passages(range(searcher.collection.num_passages)) if p.doc_id == "long-004"]
    best = searcher.reranker_inputs("የወባ ትንኝ መድኃኒት", passages, "best", max_length=48)
    head = searcher.reranker_inputs("የወባ ትንኝ መድኃኒት", passages, "head", max_length=48)
    assert head == [f"{p.title}\n{p.text}" for p in passages]
    assert best != head
    terms = set(searcher.analyzer.tokens("የወባ ትንኝ መድኃኒት"))
    for text, p in zip(best, passages):
        body = text.split("\n", 1)[1]
        assert body in p.text
        if body != p.text:  # a window was chosen: it fits and holds query terms
            assert searcher.reranker.count_tokens(text) <= 48 or body.count("።") <= 1
            assert terms & set(searcher.analyzer.tokens(body))


def test_auto_backend(monkeypatch):
    import amharic_search.index.engines.openvino as ov

    assert choose_backend("auto", "cuda:0") == "torch"
    assert choose_backend("onnx-int8", "cpu") == "onnx-int8"
    monkeypatch.setattr("amharic_search.search.rerank.cpu_has_bf16", lambda: True)
    monkeypatch.setattr(ov, "available", lambda: True)
    assert choose_backend("auto", "cpu") == "openvino-bf16"
    monkeypatch.setattr(ov, "available", lambda: False)  # OpenVINO not installed: PyTorch bf16
    assert choose_backend("auto", "cpu") == "torch-bf16"
    monkeypatch.setattr("amharic_search.search.rerank.cpu_has_bf16", lambda: False)  # bf16 would be slow: fp32
    assert choose_backend("auto", "cpu") == "torch"
    with pytest.raises(ValueError):
        Reranker.load("x", backend="tpu")


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


@pytest.fixture(scope="module")
def spread_passages():
    from conftest import sample_docs

    return [d["text"] for d in sample_docs()[:24]]


@pytest.fixture(scope="module")
def spread_scores(tiny_models, spread_passages):
    scores = Reranker.load(str(tiny_models["reranker_spread"]), backend="torch").score("የቡና ምርት", spread_passages)
    assert scores.std() > 0.1  # a model whose order means something to compare
    return scores


@pytest.mark.parametrize("backend", ["torch-bf16", "openvino-bf16", "openvino", "onnx"])
def test_engines_keep_the_ranking(tiny_models, spread_passages, spread_scores, backend, tmp_path, monkeypatch):
    """Each engine orders passages as PyTorch fp32 does (Spearman), and the bf16 ones really compute in bf16."""
    monkeypatch.setenv("AMHARIC_SEARCH_CACHE", str(tmp_path))
    rr = Reranker.load(str(tiny_models["reranker_spread"]), backend=backend)
    got = rr.score("የቡና ምርት", spread_passages)
    assert rr.backend == backend
    assert spearman(got, spread_scores) >= 0.98
    assert np.argmax(got) == np.argmax(spread_scores)
    assert len(set(np.argsort(-got)[:5]) & set(np.argsort(-spread_scores)[:5])) >= 4
    if backend.endswith("bf16"):
        if backend.startswith("openvino"):
            assert "bf" in str(rr._engine.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        if cpu_has_bf16():  # bf16 rounding shows in the scores: it ran in bf16
            assert not np.array_equal(got, spread_scores)


@pytest.fixture(scope="module")
def torch_scores(tiny_models):
    rr = Reranker.load(str(tiny_models["reranker"]), backend="torch")
    return rr.score("የቡና ምርት", PASSAGES)


def test_onnx_fp32_matches_torch(tiny_models, torch_scores, tmp_path, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_CACHE", str(tmp_path))
    rr = Reranker.load(str(tiny_models["reranker"]), backend="onnx")
    assert rr.backend == "onnx"
    np.testing.assert_allclose(rr.score("የቡና ምርት", PASSAGES), torch_scores, rtol=1e-4, atol=1e-5)
    exported = list(tmp_path.rglob("model.onnx"))
    assert len(exported) == 1
    mtime = os.path.getmtime(exported[0])
    Reranker.load(str(tiny_models["reranker"]), backend="onnx")  # a second load reuses the export
    assert os.path.getmtime(exported[0]) == mtime and len(list(tmp_path.rglob("model.onnx"))) == 1


def test_onnx_int8_is_exported_and_roughly_keeps_the_order(tiny_models, spread_passages, spread_scores, tmp_path,
                                                           monkeypatch):
    """int8 reorders more (it is opt-in), but it is a quantized copy of the same model, not noise."""
    monkeypatch.setenv("AMHARIC_SEARCH_CACHE", str(tmp_path))
    rr = Reranker.load(str(tiny_models["reranker_spread"]), backend="onnx-int8")
    assert rr.backend == "onnx-int8"
    assert spearman(rr.score("የቡና ምርት", spread_passages), spread_scores) >= 0.8
    assert list(tmp_path.rglob("model.int8.onnx"))


def test_openvino_backends(tiny_models, torch_scores):
    fp32 = Reranker.load(str(tiny_models["reranker"]), backend="openvino")
    assert fp32.backend == "openvino"
    np.testing.assert_allclose(fp32.score("የቡና ምርት", PASSAGES), torch_scores, rtol=1e-4, atol=1e-5)
    bf16 = Reranker.load(str(tiny_models["reranker"]), backend="openvino-bf16")
    got = bf16.score("የቡና ምርት", PASSAGES)
    assert bf16.backend == "openvino-bf16"
    # the same pairs in another order and batch size: the same scores, in the order given
    again = bf16._predict([("የቡና ምርት", p) for p in reversed(PASSAGES)], 2, None)[::-1]
    np.testing.assert_allclose(again, got, atol=0.02)
    # calls from several threads at once (the service, the page's sessions) each get their own answer
    from concurrent.futures import ThreadPoolExecutor

    queries = ["የቡና ምርት", "ጤና ጣቢያ", "የወባ በሽታ", "ገበሬዎች"] * 3
    alone = {q: fp32._predict([(q, p) for p in PASSAGES], 2, None) for q in set(queries)}
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda q: fp32._predict([(q, p) for p in PASSAGES], 2, None), queries))
    for q, values in zip(queries, together):
        np.testing.assert_array_equal(values, alone[q])


def test_openvino_failure(tiny_models, monkeypatch):
    """An engine that fails to start: an error when asked for by name, PyTorch under auto."""
    import amharic_search.index.engines.openvino as ovb

    def broken(*args, **kwargs):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(ovb, "_compile", broken)
    monkeypatch.setattr("amharic_search.search.rerank.choose_backend", lambda backend, device: "openvino-bf16"
                        if backend == "auto" else backend)
    with pytest.raises(ModelUnavailableError, match="openvino-bf16 backend failed.*--reranker-backend torch"):
        Reranker.load(str(tiny_models["reranker"]), backend="openvino-bf16")
    rr = Reranker.load(str(tiny_models["reranker"]), backend="auto")
    assert rr.backend == "torch-bf16" and rr.score("የቡና ምርት", PASSAGES[:2]).shape == (2,)
