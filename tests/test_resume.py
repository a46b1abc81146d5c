"""Interrupted builds keep their passage embeddings and resume to the same index."""

import json
import shutil

import numpy as np
import pytest

from amharic_search.index import build as build_mod
from amharic_search.index.build import BuildInterrupted, build_index, checkpoint_root
from amharic_search.index.dense import DenseIndex
from amharic_search.index.embcache import EmbeddingCache
from amharic_search.index.store import Store

from conftest import SAMPLE


def _interrupt_encode(monkeypatch, on_call: int):
    real, calls = build_mod.encode, []

    def encode(*args, **kwargs):
        calls.append(1)
        if len(calls) == on_call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "encode", encode)


def _passages(index):
    store = Store(index / "store.sqlite")
    return store.passages(range(store.num_passages))


def test_interrupted_build_resumes_to_the_same_index(tmp_path, tiny_models, monkeypatch):
    corpus, enc = SAMPLE / "corpus.jsonl", tmp_path / "encoder"
    shutil.copytree(tiny_models["encoder"], enc)  # changed in place below
    kw = dict(dense_model=str(enc), batch_size=4, show_progress=False)  # steps of 32 passages
    a = build_index(corpus, tmp_path / "A", **kw)
    assert a.embedded == a.passages > 96 and a.resumed == 0

    _interrupt_encode(monkeypatch, on_call=3)
    with pytest.raises(BuildInterrupted) as info:
        build_index(corpus, tmp_path / "B", **kw)
    monkeypatch.undo()
    stop = info.value
    assert isinstance(stop, KeyboardInterrupt)
    assert (stop.kept, stop.total) == (64, a.passages)
    assert str(stop) == (f"64 of {a.passages} passage embeddings kept in {stop.checkpoint}; "
                         "run the same command again to resume")
    assert not (tmp_path / "B").exists()
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]
    assert stop.checkpoint.parent == checkpoint_root(tmp_path / "B")
    assert len(EmbeddingCache(stop.checkpoint.parent, stop.checkpoint.name)) == 64
    info_json = json.loads((stop.checkpoint / "checkpoint.json").read_text(encoding="utf-8"))
    assert info_json["corpus"]["sha256"] == a.manifest["corpus"]["sha256"]
    assert info_json["fingerprint"] == a.manifest["dense"]["fingerprint"]

    # The same model name and weights (so the same embedding key) with CLS pooling is another
    # encoder: it does not take the checkpoint's vectors (a copy of it beside C goes unused, and
    # C's success removes the copy).
    config = enc / "1_Pooling" / "config.json"
    mean_pooling = config.read_text()
    config.write_text(json.dumps({**json.loads(mean_pooling), "pooling_mode_mean_tokens": False,
                                  "pooling_mode_cls_token": True}))
    shutil.copytree(checkpoint_root(tmp_path / "B"), checkpoint_root(tmp_path / "C"))
    c = build_index(corpus, tmp_path / "C", **kw)
    config.write_text(mean_pooling)
    assert c.manifest["dense"]["embedding_key"] == a.manifest["dense"]["embedding_key"]
    assert c.manifest["dense"]["fingerprint"] != a.manifest["dense"]["fingerprint"]
    assert (c.resumed, c.embedded) == (0, c.passages)
    assert not checkpoint_root(tmp_path / "C").exists()

    b = build_index(corpus, tmp_path / "B", **kw)
    assert (b.embedded, b.resumed, b.reused) == (a.passages - 64, 64, 64)
    assert np.array_equal(DenseIndex.load(tmp_path / "A" / "dense.faiss").vectors(),
                          DenseIndex.load(tmp_path / "B" / "dense.faiss").vectors())
    assert _passages(tmp_path / "A") == _passages(tmp_path / "B")
    assert b.manifest["dense"] == a.manifest["dense"]
    assert not checkpoint_root(tmp_path / "B").exists()


def test_interrupted_before_any_step_keeps_nothing(tmp_path, tiny_models, monkeypatch):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "ቡና"}\n{"id": "b", "text": "ሻይ"}\n', encoding="utf-8")
    _interrupt_encode(monkeypatch, on_call=1)
    with pytest.raises(BuildInterrupted) as info:
        build_index(corpus, tmp_path / "idx", dense_model=str(tiny_models["encoder"]), show_progress=False)
    assert (info.value.kept, info.value.total, info.value.checkpoint) == (0, 2, None)
    assert "nothing kept" in str(info.value)
    assert list(tmp_path.iterdir()) == [corpus]


def test_duplicate_passages_are_embedded_once(tmp_path, tiny_models, monkeypatch):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": "ቡና" if i % 2 else "ሻይ"}) + "\n" for i in range(6)),
                      encoding="utf-8")
    seen = []
    real = build_mod.encode
    monkeypatch.setattr(build_mod, "encode", lambda model, texts, **kw: seen.extend(texts) or real(model, texts, **kw))
    report = build_index(corpus, tmp_path / "idx", dense_model=str(tiny_models["encoder"]), show_progress=False)
    assert sorted(seen) == ["ሻይ", "ቡና"] and report.embedded == report.passages == 6
    vectors = DenseIndex.load(tmp_path / "idx" / "dense.faiss").vectors()
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[1], vectors[5])
