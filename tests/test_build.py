import json
import os
import sqlite3

import numpy as np

import pytest

from amharic_search.index import build as build_mod
from amharic_search.index.build import build_index
from amharic_search.index.manifest import FORMAT_VERSION, IndexFormatError, read_manifest
from amharic_search.search import Searcher

from conftest import SAMPLE, sample_docs


def test_manifest_describes_the_index(sample_index, tiny_models):
    m = read_manifest(sample_index, verify=True)
    assert m["format_version"] == FORMAT_VERSION
    assert m["corpus"]["documents"] == 143 and m["corpus"]["passages"] >= 150
    assert len(m["corpus"]["sha256"]) == 64
    assert m["analyzer"]["name"] == "amharic" and m["analyzer"]["stem"] is True
    assert m["dense"]["model"] == str(tiny_models["encoder"]) and m["dense"]["dim"] == 32
    from amharic_search.index.models import model_fingerprint

    assert m["dense"]["fingerprint"] == model_fingerprint(tiny_models["encoder"]) and m["dense"]["embedding_key"]
    assert m["chunking"]["token_counter"].startswith("tokenizer:")
    assert m["chunking"]["max_tokens"] == 252  # capped to the tiny encoder's 256-token window
    assert set(m["files"]) >= {"store.sqlite", "dense.faiss", "bm25/params.index.json"}
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())


def test_round_trip_keeps_amharic_text(sample_index):
    s = Searcher.load(sample_index, reranker=None)
    originals = {d["id"]: d for d in sample_docs()}
    for doc_id in ("health-001", "long-005", "cult-012"):
        stored = s.document(doc_id)
        assert stored["text"] == originals[doc_id]["text"]
        assert stored["title"] == originals[doc_id]["title"]
        assert stored["metadata"] == {k: v for k, v in originals[doc_id].items() if k not in ("id", "title", "text")}
        assert stored["metadata"]  # the sample's own field (ዘርፍ), in Amharic like its value
    # every passage maps back into its document's text
    db = sqlite3.connect(sample_index / "store.sqlite")
    for doc_text, start, text in db.execute(
        "SELECT d.text, p.start, p.text FROM passages p JOIN documents d ON d.row = p.doc_row"
    ):
        assert doc_text[start : start + len(text)] == text


def test_same_corpus_same_hash(lexical_index, tmp_path):
    again = build_index(SAMPLE / "corpus.jsonl", tmp_path / "again", dense_model=None, show_progress=False)
    assert again.manifest["corpus"]["sha256"] == read_manifest(lexical_index)["corpus"]["sha256"]


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if ".building-" in p.name or ".old-" in p.name]


def test_interrupted_rebuild_keeps_the_old_index(tmp_path, monkeypatch):
    out = tmp_path / "idx"
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)
    before = (out / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod.BM25Index, "build", boom)
    with pytest.raises(KeyboardInterrupt):
        build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)
    assert (out / "manifest.json").read_text() == before
    assert Searcher.load(out, reranker=None).search("ቡና", rerank=False).results
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("stage", ["chunk_text", "BM25Index.build", "encode", "DenseIndex.build", "write_manifest", "atomic.exchange"])
def test_interruption_at_any_stage_keeps_the_old_index(tmp_path, monkeypatch, tiny_models, stage):
    out = tmp_path / "idx"
    enc = str(tiny_models["encoder"])
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=enc, show_progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    owner, _, attr = stage.rpartition(".")
    monkeypatch.setattr(getattr(build_mod, owner) if owner else build_mod, attr, boom)
    # the corpus changed, so a finished build would change the index
    changed = tmp_path / "changed.jsonl"
    changed.write_text((SAMPLE / "corpus.jsonl").read_text(encoding="utf-8") + '{"id": "z", "text": "ቡና"}\n', encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_index(changed, out, dense_model=enc, show_progress=False)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    read_manifest(out, verify=True)
    assert Searcher.load(out, reranker=None).search("ቡና", rerank=False).results
    assert _leftovers(tmp_path) == []


def test_interrupted_first_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(build_mod, "write_manifest", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        build_index(SAMPLE / "corpus.jsonl", tmp_path / "idx", dense_model=None, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_rebuild_in_place_replaces(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "ቡና"}\n', encoding="utf-8")
    out = tmp_path / "idx"
    build_index(corpus, out, dense_model=None, show_progress=False)
    corpus.write_text('{"id": "a", "text": "ቡና"}\n{"id": "b", "text": "ሻይ"}\n', encoding="utf-8")
    build_index(corpus, out, dense_model=None, show_progress=False)
    assert read_manifest(out)["corpus"]["documents"] == 2
    assert _leftovers(tmp_path) == []


def test_refuses_to_replace_a_non_index_directory(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not an amharic-search index"):
        build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)
    assert (out / "thesis.txt").exists()


@pytest.fixture
def copy_of_index(lexical_index, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(lexical_index, target)
    return target


def test_missing_file_detected(copy_of_index):
    os.remove(copy_of_index / "store.sqlite")
    with pytest.raises(IndexFormatError, match="store.sqlite is missing"):
        Searcher.load(copy_of_index, reranker=None)


def test_truncated_file_detected(copy_of_index):
    path = copy_of_index / "bm25" / "data.csc.index.npy"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(IndexFormatError, match="wrong size"):
        Searcher.load(copy_of_index, reranker=None)


def test_tampering_detected_by_checksum(copy_of_index):
    path = copy_of_index / "bm25" / "vocab.index.json"
    data = bytearray(path.read_bytes())
    data[5] ^= 1
    path.write_bytes(bytes(data))
    read_manifest(copy_of_index)  # same size: only the checksum can tell
    with pytest.raises(IndexFormatError, match="checksum"):
        read_manifest(copy_of_index, verify=True)


@pytest.mark.parametrize("version, advice", [(FORMAT_VERSION + 1, "upgrade amharic-search"), (0, "rebuild the index")])
def test_format_version_mismatch(copy_of_index, version, advice):
    m = json.loads((copy_of_index / "manifest.json").read_text())
    m["format_version"] = version
    (copy_of_index / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match=advice):
        Searcher.load(copy_of_index, reranker=None)


def test_not_an_index(tmp_path):
    with pytest.raises(IndexFormatError, match="no such index directory"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(IndexFormatError, match="not an amharic-search index"):
        read_manifest(tmp_path)


def test_rebuild_reembeds_exactly_the_changed_documents(tmp_path, tiny_models):
    """Update with an added, an edited and a deleted document equals a from-scratch build."""
    import numpy as np

    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.store import Store

    docs = sample_docs()[:30]
    v1 = tmp_path / "v1.jsonl"
    v1.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    enc = str(tiny_models["encoder"])
    first = build_index(v1, tmp_path / "idx", dense_model=enc, show_progress=False)
    assert first.embedded == first.passages and first.reused == 0 and first.changes == {}

    changed = [dict(d) for d in docs]
    changed[3]["text"] += " ተጨማሪ ዓረፍተ ነገር።"  # edited
    del changed[7]  # deleted
    changed.append({"id": "new-1", "title": "አዲስ", "text": "አዲስ ሰነድ ስለ ቡና ምርት።"})  # added
    v2 = tmp_path / "v2.jsonl"
    v2.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in changed), encoding="utf-8")

    update = build_index(v2, tmp_path / "idx", dense_model=enc, show_progress=False)
    assert update.changes == {"added": 1, "edited": 1, "deleted": 1, "unchanged": 28}
    assert update.embedded == 2 and update.reused == update.passages - 2
    scratch = build_index(v2, tmp_path / "scratch", dense_model=enc, show_progress=False)
    assert scratch.embedded == scratch.passages

    a, b = Store(tmp_path / "idx" / "store.sqlite"), Store(tmp_path / "scratch" / "store.sqlite")
    assert a.passages(range(a.num_passages)) == b.passages(range(b.num_passages))
    np.testing.assert_allclose(DenseIndex.load(tmp_path / "idx" / "dense.faiss").vectors(),
                               DenseIndex.load(tmp_path / "scratch" / "dense.faiss").vectors(), atol=1e-5)
    s1 = Searcher.load(tmp_path / "idx", reranker=None)
    s2 = Searcher.load(tmp_path / "scratch", reranker=None)
    for q in ("የቡና ምርት", "የወባ በሽታ", "ክትባት"):
        r1, r2 = s1.search(q, rerank=False), s2.search(q, rerank=False)
        assert [x.passage_id for x in r1.results] == [x.passage_id for x in r2.results]


def test_changed_model_never_reuses_vectors(tmp_path, tiny_models):
    from tiny_models import build_encoder, train_tokenizer

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "ቡና"}\n', encoding="utf-8")
    first = build_index(corpus, tmp_path / "idx", dense_model=str(tiny_models["encoder"]), show_progress=False)
    tok = train_tokenizer(["ቡና ሻይ ወተት"] * 20, vocab_size=40)
    other = build_encoder(tmp_path / "other", tok, seed=5)
    again = build_index(corpus, tmp_path / "idx", dense_model=str(other), show_progress=False)
    assert first.embedded == 1 and again.embedded == 1 and again.reused == 0


def test_exchange_swaps_directories_atomically(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("A")
    (b / "x").write_text("B")
    assert build_mod.atomic.exchange(a, b) is True  # Linux renameat2(RENAME_EXCHANGE)
    assert (a / "x").read_text() == "B" and (b / "x").read_text() == "A"


def test_reader_keeps_working_while_index_is_rebuilt(tmp_path):
    out = tmp_path / "idx"
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)
    reader = Searcher.load(out, reranker=None)
    before = [r.doc_id for r in reader.search("የቡና ምርት", rerank=False).results]
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)  # replaced under it
    assert [r.doc_id for r in reader.search("የቡና ምርት", rerank=False).results] == before


def test_dense_index_kinds_and_recall():
    """IVF above the exact-search limit: same vectors back, top-10 close to exact search."""
    from amharic_search.index.dense import DenseIndex

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((300, 64)).astype(np.float32)
    x = centers[rng.integers(0, 300, 30_000)] + 0.3 * rng.standard_normal((30_000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    flat, ivf = DenseIndex.build(x), DenseIndex.build(x, kind="ivf")
    assert flat.info == {"type": "flat"} and ivf.info["type"] == "ivf" and ivf.info["nprobe"] >= 16
    assert ivf.info["storage"] == "fp16"
    np.testing.assert_allclose(ivf.vectors(), x, atol=1e-3)  # float16: about 3 significant digits
    hits = 0
    for q in x[:50] + 0.05 * rng.standard_normal((50, 64)).astype(np.float32):
        exact, _ = flat.search(q, 10)
        approx, _ = ivf.search(q, 10)
        hits += len(set(exact.tolist()) & set(approx.tolist()))
    assert hits / 500 >= 0.9


def test_ivf_index_round_trip(tmp_path, tiny_models):
    report = build_index(SAMPLE / "corpus.jsonl", tmp_path / "ivf", dense_model=str(tiny_models["encoder"]), dense_index_kind="ivf",
                         show_progress=False)
    manifest = json.loads((tmp_path / "ivf" / "manifest.json").read_text())
    assert manifest["dense"]["faiss"]["type"] == "ivf" and report.passages == manifest["corpus"]["passages"]
    from amharic_search.search import Searcher

    s = Searcher.load(tmp_path / "ivf", reranker=None)
    assert s.collection.vectors.info == manifest["dense"]["faiss"]
    assert s.search("የቡና ምርት", stages="dense", rerank=False).results


def test_bf16_embeddings_are_keyed_apart_and_close_to_fp32(tmp_path, tiny_models):
    from amharic_search.index.build import embedding_key
    from amharic_search.index.dense import encode
    from amharic_search.index.models import load_encoder

    model = load_encoder(str(tiny_models["encoder"]))
    assert embedding_key("m", "w", model, "bf16") != embedding_key("m", "w", model, "fp32")
    texts = [d["text"] for d in sample_docs()[:20]]
    a = encode(model, texts, precision="fp32")
    b = encode(model, texts, precision="bf16")
    assert not np.array_equal(a, b)  # really computed in bf16
    assert (a * b).sum(axis=1).min() > 0.99
    build_index(SAMPLE / "corpus.jsonl", tmp_path / "bf", dense_model=str(tiny_models["encoder"]), dense_precision="bf16",
                show_progress=False)
    assert json.loads((tmp_path / "bf" / "manifest.json").read_text())["dense"]["precision"] == "bf16"


def test_openvino_embeddings_match_pytorch_and_are_keyed_apart(tmp_path, tiny_models, capsys):
    from amharic_search.index.build import embedding_key
    from amharic_search.index.dense import encode
    from amharic_search.index.models import load_encoder

    model = load_encoder(str(tiny_models["encoder"]))
    assert embedding_key("m", "w", model, "bf16", "openvino") != embedding_key("m", "w", model, "bf16")
    assert embedding_key("m", "w", model, "bf16", "torch") == embedding_key("m", "w", model, "bf16")
    texts = [d["text"] for d in sample_docs()[:20]]
    for kind in ("document", "query"):  # with the model's prompt for each kind, as PyTorch
        ref = encode(model, texts, kind=kind, precision="fp32")
        same = encode(model, texts, kind=kind, precision="fp32", engine="openvino")
        assert (ref * same).sum(axis=1).min() > 0.99999, kind
        fast = encode(model, texts, kind=kind, precision="bf16", engine="openvino")
        assert (ref * fast).sum(axis=1).min() > 0.99 and np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)
    capsys.readouterr()
    encode(model, texts, batch_size=8, engine="openvino", show_progress=True)  # a bar over the batches, as PyTorch's
    assert "3/3" in capsys.readouterr().err
    out = tmp_path / "ov"
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=str(tiny_models["encoder"]), dense_precision="bf16",
                dense_engine="openvino", show_progress=False)
    dense = json.loads((out / "manifest.json").read_text())["dense"]
    assert dense["engine"] == "openvino" and dense["precision"] == "bf16"
    from amharic_search.search.searcher import Searcher

    assert Searcher.load(out, reranker=None).search("የቡና ምርት", stages="dense", rerank=False).results


def test_document_index_is_built_from_whole_documents(tmp_path):
    """Documents are ranked on their whole text; one-passage documents reuse their passage's text,
    and when every document is one passage the document index is the passage index itself."""
    from amharic_search.index.analyzer import Analyzer
    from amharic_search.index.bm25 import BM25Index

    docs = sample_docs()
    report = build_index(SAMPLE / "corpus.jsonl", tmp_path / "mixed", dense_model=None, show_progress=False)
    assert report.passages > report.documents  # the sample has long documents
    ana = Analyzer()
    expected = BM25Index.build([ana.tokens(build_mod.searchable_text(d.get("title", ""), d["text"])) for d in docs])
    built = BM25Index.load(tmp_path / "mixed" / build_mod.BM25_DOCS_DIR)
    for q in ("የቡና ምርት", "የወባ በሽታ መከላከል", "ኢትዮጵያ"):
        terms = ana.tokens(q)
        np.testing.assert_allclose(built.scores(terms), expected.scores(terms), rtol=1e-6)

    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(json.dumps({"id": f"d{i}", "title": d.get("title", ""), "text": d["text"][:200]},
                                          ensure_ascii=False) for i, d in enumerate(docs)), encoding="utf-8")
    report = build_index(short, tmp_path / "short", dense_model=None, show_progress=False)
    assert report.passages == report.documents
    for name in os.listdir(tmp_path / "short" / build_mod.BM25_DIR):  # not built twice, not stored twice
        assert os.path.samefile(tmp_path / "short" / build_mod.BM25_DIR / name, tmp_path / "short" / build_mod.BM25_DOCS_DIR / name)
    s = Searcher.load(tmp_path / "short", reranker=None)
    rows, _ = s.collection.lexical(s.analyzer.tokens("የቡና ምርት"), 5)
    assert rows.size and [p.doc_id for p in s.collection.passages(rows.tolist())][0] == \
        f"d{int(np.argmax(s.collection.bm25.scores(s.analyzer.tokens('የቡና ምርት'))))}"


@pytest.fixture
def no_model(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("model loaded")

    monkeypatch.setattr(build_mod, "load_encoder", boom)
    monkeypatch.setattr(build_mod, "resolve_model", boom)


def test_bad_inputs_are_reported_before_any_model_loads(tmp_path, no_model):
    from amharic_search.index.readers import CorpusError

    def build(corpus, out="idx"):
        return build_index(corpus, tmp_path / out, dense_model="some/encoder", show_progress=False)

    with pytest.raises(CorpusError, match="nope.jsonl: no such file"):
        build(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{not json\n{"id": "a", "text": "ቡና"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl, line 1: not valid JSON"):
        build(bad)
    (tmp_path / "latin1.csv").write_bytes("id,text\n1,café\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        build(tmp_path / "latin1.csv")
    (tmp_path / "c.pdf").write_text("%PDF")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        build(tmp_path / "c.pdf")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileExistsError, match="a-file exists and is not a directory"):
        build(SAMPLE / "corpus.jsonl", "a-file")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "ch1.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an amharic-search index"):
        build(SAMPLE / "corpus.jsonl", "thesis")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "bad.jsonl", "c.pdf", "latin1.csv", "thesis"]
    with pytest.raises(AssertionError, match="model loaded"):  # good inputs: on to the model
        build(SAMPLE / "corpus.jsonl")
