"""Changes without a rebuild (index/update.py, search/segments.py): exact BM25 against a fresh build on
real enh documents, deletions never returned, atomic commits under a kill at each stage, readers'
snapshots, the CLI commands and the service's write endpoints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from amharic_search.index.build import build_index
from amharic_search.index.layout import MANIFEST
from amharic_search.index.manifest import read_manifest
from amharic_search.index.update import (STAGES, UpdateError, add_documents, compact, delete_documents,
                                         live_documents)
from amharic_search.search import Searcher
from amharic_search.search.segments import SegmentedIndex
from amharic_search.search.service import SearchService, ServiceConfig, create_app

from conftest import ENH, sample_docs



def enh_docs(n: int = 300) -> list[dict]:
    with open(ENH / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f)]


def enh_queries(n: int = 40) -> list[str]:
    with open(ENH / "queries.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def write_jsonl(path: Path, docs) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def fresh_build(index: Path, out: Path, **options) -> Path:
    """A fresh build of the index's live documents, in collection order."""
    docs = [{**d["metadata"], "id": d["id"], "title": d["title"], "text": d["text"]} for d in live_documents(index)]
    build_index(write_jsonl(out.parent / f"{out.name}.jsonl", docs), out, dense_model=None, show_progress=False, **options)
    return out


def assert_same_lexical(index: Path, fresh: Path, queries: list[str], depth: int = 100) -> int:
    """Same documents, same best passages, and bit-identical BM25 scores for every query."""
    a, b = Searcher.load(index, reranker=None), Searcher.load(fresh, reranker=None)
    compared = 0
    for q in queries:
        terms = a.analyzer.tokens(q)
        rows_a, scores_a = a.collection.lexical(terms, depth)
        rows_b, scores_b = b.collection.lexical(terms, depth)
        assert [p.passage_id for p in a.collection.passages(rows_a)] == [p.passage_id for p in b.collection.passages(rows_b)], q
        assert np.array_equal(scores_a, scores_b), q
        compared += len(rows_a)
        ra = a.search(q, stages="lexical", rerank=False, top_k=10)
        rb = b.search(q, stages="lexical", rerank=False, top_k=10)
        assert [(r.doc_id, r.scores.bm25) for r in ra.results] == [(r.doc_id, r.scores.bm25) for r in rb.results]
    assert a.collection.num_docs == b.collection.num_docs
    return compared


@pytest.fixture
def enh_index(tmp_path) -> tuple[Path, list[dict]]:
    docs = enh_docs(300)
    out = tmp_path / "enh"
    build_index(write_jsonl(tmp_path / "base.jsonl", docs[:150]), out, dense_model=None, show_progress=False)
    return out, docs


# -- exactness -------------------------------------------------------------------------------------


def test_scores_equal_a_fresh_build_after_adds_replaces_and_deletes(enh_index, tmp_path):
    index, docs = enh_index
    queries = enh_queries(40) + [d["text"][:80] for d in docs[::25]]
    r = add_documents(index, docs[150:200])
    assert (r.added, r.replaced, r.generation, r.documents) == (50, 0, 1, 200)
    r = delete_documents(index, [docs[3]["id"], docs[160]["id"], "no-such-id"])
    assert (r.deleted, r.missing, r.documents) == (2, ["no-such-id"], 198)
    edited = [{**docs[i], "text": docs[i]["text"] + " የተሻሻለ ዜና ዛሬ"} for i in (5, 170)]
    r = add_documents(index, edited + docs[200:260])
    assert (r.added, r.replaced, r.documents) == (60, 2, 258)
    r = delete_documents(index, [docs[205]["id"], docs[5]["id"]])  # one from the last segment, one replaced copy
    assert r.deleted == 2
    add_documents(index, docs[260:300] + [docs[3]])  # a deleted id comes back
    assert isinstance(Searcher.load(index, reranker=None).collection, SegmentedIndex)
    assert read_manifest(index)["segments"]["generation"] == 5
    fresh = fresh_build(index, tmp_path / "fresh")
    assert assert_same_lexical(index, fresh, queries) > 1000
    # compacted: one index again, the same documents and scores
    compact(index)
    assert "segments" not in read_manifest(index)
    assert assert_same_lexical(index, fresh, queries) > 1000


def test_a_sharded_index_takes_changes_with_exact_scores(tmp_path):
    docs = enh_docs(200)
    index = tmp_path / "sharded"
    build_index(write_jsonl(tmp_path / "base.jsonl", docs[:120]), index, dense_model=None, show_progress=False, shards=3)
    add_documents(index, docs[120:200])
    delete_documents(index, [docs[0]["id"], docs[60]["id"], docs[150]["id"]])
    add_documents(index, [{**docs[100], "text": docs[100]["text"] + " ለውጥ"}])
    assert [p["path"] for p in read_manifest(index)["segments"]["parts"]][:3] == ["shard-000", "shard-001", "shard-002"]
    fresh = fresh_build(index, tmp_path / "fresh")
    assert assert_same_lexical(index, fresh, enh_queries(30)) > 500
    compact(index)
    assert len(read_manifest(index)["shards"]) == 3
    assert assert_same_lexical(index, fresh, enh_queries(30)) > 500


def test_single_additions_are_merged_and_stay_exact(enh_index, tmp_path, monkeypatch):
    from amharic_search.index import update

    monkeypatch.setattr(update, "MERGE_FACTOR", 3)
    index, docs = enh_index
    for i, doc in enumerate(docs[150:175]):
        add_documents(index, [doc])
        if i % 4 == 3:
            delete_documents(index, [docs[150 + i - 1]["id"]])
    parts = read_manifest(index)["segments"]["parts"]
    segments = [p for p in parts if p["path"].startswith("segments/")]
    assert len(segments) <= 2 * 3 and sum(p["documents"] - p["deleted"] for p in parts) == 150 + 25 - 6
    fresh = fresh_build(index, tmp_path / "fresh")
    assert assert_same_lexical(index, fresh, enh_queries(30)) > 500


def test_deleted_documents_never_appear_and_allow_is_exact(tmp_path, sample_index, tiny_models):
    index = tmp_path / "sample"
    shutil.copytree(sample_index, index)
    docs = sample_docs()
    new = {"id": "new-1", "title": "የቡና ዋጋ", "text": "የቡና ዋጋ በዓለም ገበያ ጨመረ። ገበሬዎች ደስተኞች ናቸው።", "source": "ሪፖርተር"}
    add_documents(index, [new])
    gone = [docs[0]["id"], docs[1]["id"]]
    delete_documents(index, gone)
    s = Searcher.load(index, reranker=None)
    assert s.has_dense and s.document("new-1")["metadata"] == {"source": "ሪፖርተር"}
    assert all(s.document(d) is None for d in gone)
    col = s.collection
    total = col.live_passages.shape[0]
    qvec = s.first.encode("የቡና ዋጋ")
    rows, _ = col.dense(qvec, 1000)
    found = {p.doc_id for p in col.passages(rows)}
    assert "new-1" in found and not found & set(gone) and len(found) == col.num_docs
    terms = s.analyzer.tokens("የቡና ዋጋ ገበሬዎች")
    rows, _ = col.lexical(terms, 1000)
    assert "new-1" in {p.doc_id for p in col.passages(rows)} and not {p.doc_id for p in col.passages(rows)} & set(gone)
    # a mask over passage rows: the true top among allowed rows, against brute force
    allow = np.random.default_rng(0).random(total) < 0.5
    all_rows, all_scores = col.lexical(terms, 10_000)
    docs_ok = {int(d) for d in col.document_of(np.flatnonzero(allow))}
    want = [(int(d), float(sc)) for d, sc in zip(col.document_of(all_rows), all_scores) if int(d) in docs_ok][:5]
    rows, scores = col.lexical(terms, 5, allow=allow)
    assert [(int(d), float(sc)) for d, sc in zip(col.document_of(rows), scores)] == want
    assert allow[rows].all()
    vectors = np.concatenate([p.vectors.vectors() for p in col.parts])
    sims = vectors @ qvec
    ok = allow & col.live_passages
    best: dict[int, float] = {}
    for row in np.flatnonzero(ok):
        d = int(col.document_of([row])[0])
        best[d] = max(best.get(d, -9.0), float(sims[row]))
    brute = sorted(best, key=lambda d: -best[d])[:5]
    rows, scores = col.dense(qvec, 5, allow=allow)
    assert [int(d) for d in col.document_of(rows)] == brute and ok[rows].all()
    assert np.allclose(scores, [best[d] for d in brute], atol=1e-5)


def test_an_index_built_before_term_counts_says_how_to_change_it(tmp_path, lexical_index):
    index = tmp_path / "old"
    shutil.copytree(lexical_index, index)
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    for name in ("bm25", "bm25_docs"):
        for file in ("term_counts.npy", "lengths.npy"):
            (index / name / file).unlink(missing_ok=True)
            manifest["files"].pop(f"{name}/{file}", None)
    (index / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert Searcher.load(index, reranker=None).search("ቡና", stages="lexical", rerank=False).results  # still searchable
    with pytest.raises(UpdateError, match="build it again once"):
        add_documents(index, [{"id": "x", "text": "ቡና"}])


def test_bad_documents_are_clear_errors(tmp_path, lexical_index):
    with pytest.raises(UpdateError, match="document 2: missing 'text'"):
        add_documents(lexical_index, [{"id": "a", "text": "ቡና"}, {"id": "b"}])
    with pytest.raises(UpdateError, match="'id' is empty"):
        add_documents(lexical_index, [{"id": " ", "text": "ቡና"}])
    with pytest.raises(UpdateError, match=r"^document 2: document 'b' has no text$"):
        add_documents(lexical_index, [{"id": "a", "text": "ቡና"}, {"id": "b", "text": " "}])
    with pytest.raises(UpdateError, match="no searchable words"):
        add_documents(lexical_index, [{"id": "a", "text": "።።"}])
    assert "segments" not in read_manifest(lexical_index)


# -- atomicity and snapshots -----------------------------------------------------------------------

CHANGE = """
import json, sys
from amharic_search.index.update import add_documents, delete_documents
index, kind, arg = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "add":
    add_documents(index, json.loads(arg))
else:
    delete_documents(index, json.loads(arg))
print("acknowledged")
"""


def live_ids(index: Path) -> list[str]:
    Searcher.load(index, reranker=None, use_dense=False)  # it opens
    return [d["id"] for d in live_documents(index)]


@pytest.mark.parametrize("kind,stage", [("add", s) for s in STAGES] + [("delete", s) for s in STAGES[1:]])
def test_a_change_killed_at_any_stage_leaves_the_index_before_or_after(tmp_path, lexical_index, kind, stage):
    index = tmp_path / "idx"
    shutil.copytree(lexical_index, index)
    add_documents(index, [{"id": "kept", "title": "", "text": "የመጀመሪያው ለውጥ ቡና"}])  # a segmented index already
    before = live_ids(index)
    change = ([{"id": "new", "title": "", "text": "አዲስ ሰነድ ስለ ቡና"}, {"id": before[0], "text": "ተተካ"}]
              if kind == "add" else [before[1], "kept"])
    after = ([d for d in before if d != before[0]] + ["new", before[0]] if kind == "add"
             else [d for d in before if d not in change])
    env = {**os.environ, "AMHARIC_SEARCH_CRASH_AT": stage}
    done = subprocess.run([sys.executable, "-c", CHANGE, str(index), kind, json.dumps(change, ensure_ascii=False)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 75 and "acknowledged" not in done.stdout, done.stderr
    now = live_ids(index)
    assert now == (after if stage == "committed" else before)
    s = Searcher.load(index, reranker=None)
    assert s.search("ቡና", stages="lexical", rerank=False).results
    # the index takes the next change (nothing left half-done blocks it), and it is acknowledged
    done = subprocess.run([sys.executable, "-c", CHANGE, str(index), kind, json.dumps(change, ensure_ascii=False)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "acknowledged" in done.stdout, done.stderr
    assert live_ids(index) == after


def test_a_reader_keeps_its_snapshot_while_changes_land(tmp_path, lexical_index):
    index = tmp_path / "idx"
    shutil.copytree(lexical_index, index)
    old = Searcher.load(index, reranker=None)
    victim = old.search("ቡና", stages="lexical", rerank=False).results[0].doc_id
    add_documents(index, [{"id": "fresh", "title": "ቡና ቡና ቡና", "text": "ቡና ቡና ቡና ቡና"}])
    delete_documents(index, [victim])
    ids = lambda s: [r.doc_id for r in s.search("ቡና", stages="lexical", rerank=False, top_k=50).results]  # noqa: E731
    assert victim in ids(old) and "fresh" not in ids(old) and old.document("fresh") is None
    new = old.reopen()
    assert victim not in ids(new) and ids(new)[0] == "fresh"
    before = ids(old)
    compact(index)  # the directory is swapped: both readers keep answering from what they opened
    assert ids(old) == before and ids(new)[0] == "fresh"
    assert ids(new.reopen()) == ids(new)


# -- the command line ------------------------------------------------------------------------------


def test_cli_add_delete_compact(tmp_path, run, lexical_index):
    index = tmp_path / "idx"
    shutil.copytree(lexical_index, index)
    n = len(sample_docs())
    passages = read_manifest(index)["corpus"]["passages"]
    more = write_jsonl(tmp_path / "more.jsonl", [{"id": "a1", "title": "ቡና", "text": "ቡና በኢትዮጵያ።"},
                                                 {"id": sample_docs()[0]["id"], "title": "ተተካ", "text": "አዲስ ጽሑፍ።"}])
    csv = tmp_path / "more.csv"
    csv.write_text("id,title,text\na2,ሻይ,ሻይ ይጠጣል።\n", encoding="utf-8")
    r = run("index", "add", index, more, csv)
    assert r.exit_code == 0, r.output
    p1 = Searcher.load(index, reranker=None).collection.num_passages
    assert r.output == (f"Added 3 documents (1 replacing documents with the same id) to {index}: "
                        f"{n + 2:,} documents, {p1:,} passages (generation 1)\n")
    r = run("index", "delete", index, "a2", "nope")
    assert r.exit_code == 0
    assert r.stdout == f"Deleted 1 documents from {index}: {n + 1:,} documents, {p1 - 1:,} passages (generation 2)\n"
    assert "note: not in the index: nope" in r.stderr
    r = run("index", "delete", index, "nope")
    assert r.exit_code == 1 and r.output == f"Error: no document with id nope in {index}\n"
    r = run("index", "add", index, tmp_path / "missing.jsonl")
    assert r.exit_code == 1 and "Traceback" not in r.output and "missing.jsonl" in r.output
    r = run("index", "add", tmp_path / "nowhere", more)
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "no such index directory" in r.output
    r = run("index", "info", index, "--verify")
    assert r.exit_code == 0 and "generation 2" in r.output and "2 deleted" in r.output  # the replaced one, a2
    store = index / read_manifest(index)["segments"]["parts"][-1]["path"] / "store.sqlite"
    original = store.read_bytes()
    store.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # a damaged segment is found by --verify
    r = run("index", "info", index, "--verify")
    assert r.exit_code == 1 and "does not match its checksum" in r.output
    store.write_bytes(original)
    r = run("index", "compact", index)
    assert r.exit_code == 0 and r.output == f"Compacted {index}: {n + 1:,} documents, {p1 - 1:,} passages\n"
    assert read_manifest(index)["corpus"]["documents"] == n + 1
    r = run("index", "compact", index)
    assert r.output.endswith(f"Compacted {index}: {n + 1:,} documents, {p1 - 1:,} passages\n")
    assert passages  # the built index had passages


# -- the service -----------------------------------------------------------------------------------


def make_service(path, **config) -> SearchService:
    return SearchService(ServiceConfig(path=str(path), reranker=None, reload_interval=0, **config))


def test_service_write_endpoints(tmp_path, lexical_index, run):
    index = tmp_path / "idx"
    shutil.copytree(lexical_index, index)
    key = {"X-API-Key": "s3cret"}
    with TestClient(create_app(make_service(index, api_key="s3cret"))) as c:
        doc = {"id": "svc-1", "title": "የሻይ ቅጠል", "text": "የሻይ ቅጠል ምርት በደቡብ ጨመረ።", "source": "አዲስ ዘመን"}
        assert c.post("/v1/documents", json={"documents": [doc]}).status_code == 401
        assert c.delete("/v1/documents/svc-1").status_code == 401
        r = c.post("/v1/documents", json={"documents": [doc]}, headers=key)
        assert r.status_code == 200, r.text
        assert r.json() | {"notes": []} == {"index": "idx", "added": 1, "replaced": 0, "generation": 1,
                                           "documents": len(sample_docs()) + 1, "passages": r.json()["passages"],
                                           "notes": []}
        hits = c.get("/v1/search", params={"query": "የሻይ ቅጠል", "stages": "lexical", "rerank": False}, headers=key).json()
        assert hits["results"][0]["doc_id"] == "svc-1"
        assert c.get("/v1/documents/svc-1", headers=key).json()["metadata"] == {"source": "አዲስ ዘመን"}
        for body, status in [({"documents": []}, 422), ({"documents": [{"id": "x"}]}, 422), ({"docs": []}, 422),
                             ({"documents": [{"id": "", "text": "t"}]}, 422), ([1, 2], 422)]:
            r = c.post("/v1/documents", json=body, headers=key)
            assert r.status_code == status and set(r.json()) == {"error", "message"}, (body, r.text)
        r = c.post("/v1/documents", content=b'{"documents": [', headers={**key, "Content-Type": "application/json"})
        assert r.status_code == 422 and "not valid JSON" in r.json()["message"]
        r = c.delete("/v1/documents/svc-1", headers=key)
        assert r.status_code == 200 and r.json()["deleted"] == 1 and r.json()["generation"] == 2
        assert c.get("/v1/documents/svc-1", headers=key).status_code == 404
        hits = c.get("/v1/search", params={"query": "የሻይ ቅጠል", "stages": "lexical", "rerank": False}, headers=key).json()
        assert "svc-1" not in [h["doc_id"] for h in hits["results"]]
        r = c.delete("/v1/documents/svc-1", headers=key)
        assert r.status_code == 404 and r.json()["error"] == "unknown_document"
        # a change by another process (the CLI) is seen by the next request, without a restart or a poll
        more = write_jsonl(tmp_path / "more.jsonl", [{"id": "cli-1", "title": "", "text": "የግመል ወተት ገበያ"}])
        assert run("index", "add", index, more).exit_code == 0
        hits = c.get("/v1/search", params={"query": "የግመል ወተት", "stages": "lexical", "rerank": False}, headers=key).json()
        assert hits["results"][0]["doc_id"] == "cli-1"
        assert c.get("/v1/indexes/idx", headers=key).json()["documents"] == len(sample_docs()) + 1
    with TestClient(create_app(make_service(index))) as c:  # no API key: the server takes no changes
        r = c.post("/v1/documents", json={"documents": [doc]})
        assert r.status_code == 403 and r.json()["error"] == "read_only"
        assert c.delete("/v1/documents/cli-1").status_code == 403


# -- the page's upload -----------------------------------------------------------------------------


def test_the_page_upload_adds_to_an_existing_collection(tmp_path):
    from amharic_search.index.readers import CorpusError
    from amharic_search.search.ui.catalog import Upload, add_from_uploads, build_from_uploads

    root = tmp_path / "indexes"
    first = "\n".join(json.dumps(d, ensure_ascii=False) for d in sample_docs()[:10]).encode()
    build_from_uploads([Upload("news.jsonl", first)], root, "news", dense_model=None)
    more = "id,title,text\nn1,ሻይ,የሻይ ቅጠል ምርት ጨመረ።\n{},ተተካ,አዲስ ጽሑፍ።\n".format(sample_docs()[0]["id"]).encode()
    report = add_from_uploads([Upload("more.csv", more)], root / "news")
    assert (report.added, report.replaced, report.documents) == (1, 1, 11)
    s = Searcher.load(root / "news", reranker=None)
    assert s.search("የሻይ ቅጠል", stages="lexical", rerank=False).results[0].doc_id == "n1"
    assert s.document(sample_docs()[0]["id"])["title"] == "ተተካ"
    with pytest.raises(CorpusError) as err:
        add_from_uploads([Upload("bad.jsonl", b'{"id": "x", "text": "t"}\n{oops\n')], root / "news")
    assert "bad.jsonl, line 2" in str(err.value) and "upload-" not in str(err.value)


def test_service_embeds_added_documents_with_its_loaded_encoder(tmp_path, sample_index):
    index = tmp_path / "sample"
    shutil.copytree(sample_index, index)
    service = make_service(index, api_key="k")
    with TestClient(create_app(service)) as c:
        r = c.post("/v1/documents", headers={"X-API-Key": "k"},
                   json={"documents": [{"id": "d-new", "title": "የግመል ወተት", "text": "የግመል ወተት በሶማሌ ክልል ይመረታል።"}]})
        assert r.status_code == 200 and r.json()["notes"] == []
        searcher = service.entry(None).searcher
        assert searcher.has_dense and searcher.collection.parts[-1].vectors.size == 1
        hits = c.get("/v1/search", headers={"X-API-Key": "k"},
                     params={"query": "የግመል ወተት", "stages": "dense", "rerank": False, "top_k": 100}).json()
        assert "d-new" in [h["doc_id"] for h in hits["results"]]
    service.close()


def test_adapting_and_title_pairs_read_the_live_documents(tmp_path, lexical_index):
    from amharic_search.search.train.adapt import export_documents
    from amharic_search.search.train.pairs import index_documents

    index = tmp_path / "idx"
    shutil.copytree(lexical_index, index)
    first = sample_docs()[0]["id"]
    add_documents(index, [{"id": "later", "title": "ርዕስ", "text": "ጽሑፍ"}])
    delete_documents(index, [first])
    n = export_documents(index, tmp_path / "docs.jsonl")
    exported = [json.loads(line) for line in (tmp_path / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert n == len(sample_docs()) and exported[-1]["amharic-search:text"] == "ጽሑፍ"
    assert first not in [d["amharic-search:id"] for d in exported]
    assert [d for d, _, _ in index_documents(index)] == [d["id"] for d in live_documents(index)]


def test_without_its_encoder_an_added_document_is_lexical_only_with_a_note(tmp_path, sample_index, run):
    index = tmp_path / "sample"
    shutil.copytree(sample_index, index)
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    manifest["dense"]["model"] = str(tmp_path / "gone-encoder")  # the encoder is not on this machine any more
    (index / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    more = write_jsonl(tmp_path / "more.jsonl", [{"id": "x1", "title": "", "text": "የግመል ወተት ገበያ"}])
    r = run("index", "add", index, more)
    assert r.exit_code == 0 and "have no embeddings (found by keywords only)" in r.stderr
    assert not (index / read_manifest(index)["segments"]["parts"][-1]["path"] / "dense.faiss").exists()
    s = Searcher.load(index, reranker=None)
    assert s.search("የግመል ወተት", stages="lexical", rerank=False).results[0].doc_id == "x1"
    r = run("--quiet", "index", "add", index, more, "--strict")
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_filters_and_facets_after_changes_equal_a_fresh_build(tmp_path):
    """enh articles with their real newspaper and Ethiopian date: after an add (new papers and dates,
    some undated), a replace, deletes and a compact, filtered searches and facets are those of a
    fresh build of the same documents; the fields keep the index's types."""
    meta = {}
    with open(ENH / "metadata.jsonl", encoding="utf-8") as f:
        for _, line in zip(range(300), f):
            m = json.loads(line)
            meta[m["id"]] = {"source": m["source"], "date_ethiopian": m["date_ethiopian"]}
    docs = [{**d, **meta[d["id"]]} for d in enh_docs(300)]
    for d in docs[200:210]:
        d.pop("date_ethiopian")  # undated documents among the added ones
    index = tmp_path / "enh"
    build_index(write_jsonl(tmp_path / "base.jsonl", docs[:150]), index, dense_model=None, show_progress=False)
    types = {k: v["type"] for k, v in read_manifest(index)["fields"].items()}
    add_documents(index, docs[150:300], dense_model=None)
    add_documents(index, [{**docs[3], "source": "አዲስ ጋዜጣ", "text": docs[3]["text"] + " ቡና"}], dense_model=None)
    delete_documents(index, [d["id"] for d in docs[20:40]] + [d["id"] for d in docs[160:170]])
    queries = enh_queries(15)
    sources = sorted({docs[i]["source"] for i in (0, 150, 250)})
    filters = [(f"source={sources[0]}",), ("date>=1997",), (f"source={','.join(sources)}", "date<1998-06"),
               ("source=አዲስ ጋዜጣ",), (f"source!={sources[0]}",)]

    def same(a: Path, b: Path) -> None:
        sa, sb = Searcher.load(a, reranker=None), Searcher.load(b, reranker=None)
        for q in queries:
            for fs in filters:
                ra = sa.search(q, stages="lexical", rerank=False, top_k=10, filters=fs)
                rb = sb.search(q, stages="lexical", rerank=False, top_k=10, filters=fs)
                assert [(r.doc_id, r.scores.bm25) for r in ra.results] == [(r.doc_id, r.scores.bm25) for r in rb.results]
                assert ra.facets == rb.facets, (q, fs)
        replaced = sa.search("ቡና", stages="lexical", rerank=False, filters=("source=አዲስ ጋዜጣ",))
        assert [r.doc_id for r in replaced.results] == [docs[3]["id"]]  # the replaced document, by its new source

    fresh = fresh_build(index, tmp_path / "fresh", fields=None)
    same(index, fresh)
    compact(index)
    assert {k: v["type"] for k, v in read_manifest(index)["fields"].items()} == types
    same(index, fresh)
