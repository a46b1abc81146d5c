"""Past one machine: sharded indexes (exactly the unsharded rankings), embedding on a Ray cluster,
the service on Ray Serve. The Ray tests run a real local Ray cluster (one per module)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import numpy as np
import pytest
from browser import free_port, processes
from conftest import SAMPLE, sample_docs

from amharic_search.index.build import build_index
from amharic_search.index.dense import DenseIndex
from amharic_search.index.manifest import read_manifest
from amharic_search.index.shard import ShardError, split_index
from amharic_search.index.store import Store
from amharic_search.search.searcher import Searcher

QUERIES = ["የወባ በሽታ መከላከል", "ቡና", "ኢትዮጵያ ምርጫ", "ትምህርት ቤት", "የአዲስ አበባ ከተማ", "ግብርና ዝናብ", "ሰላም"]


# Another process embeds the query on its own thread count (Ray starts each worker with one torch thread), so
# the float32 query vector differs in its last bits, and the normalized fused score by about 1e-6.
ACROSS_PROCESSES = 1e-5


def _comparable(response) -> dict:
    d = response.to_dict()
    d.pop("timings_ms")
    return d


def _assert_same(a, b, *, tol: float = 1e-6) -> None:
    """Same documents, passages and ranks at every stage; scores within ``tol``."""
    da, db = _comparable(a), _comparable(b)
    assert [r["passage_id"] for r in da["results"]] == [r["passage_id"] for r in db["results"]]
    for ra, rb in zip(da["results"], db["results"]):
        assert ra["ranks"] == rb["ranks"]
        for stage, value in ra["scores"].items():
            assert (value is None) == (rb["scores"][stage] is None)
            if value is not None:
                assert abs(value - rb["scores"][stage]) <= tol, (stage, value, rb["scores"][stage])
    for key in ("stages", "lexical_hits", "query_terms", "warnings", "reranked"):
        assert da[key] == db[key]


@pytest.fixture(scope="module")
def sharded(sample_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "sample-3"
    split_index(sample_index, out, shards=3)
    return out


# -- sharded indexes ---------------------------------------------------------------------------------


def test_split_writes_self_contained_shards(sample_index, sharded):
    whole, manifest = read_manifest(sample_index), read_manifest(sharded, verify=True)
    assert [s["path"] for s in manifest["shards"]] == ["shard-000", "shard-001", "shard-002"]
    assert sum(s["passages"] for s in manifest["shards"]) == whole["corpus"]["passages"]
    assert manifest["collection"]["documents"] == whole["corpus"]["documents"]
    # each shard is an index of its own, holding consecutive documents of the whole
    ids = Store(sample_index / "store.sqlite").doc_ids()
    for entry in manifest["shards"]:
        shard = Searcher.load(sharded / entry["path"], reranker=None, use_dense=False)
        start = entry["first_document"]
        assert shard.collection.doc_ids() == ids[start : start + entry["documents"]]
        assert read_manifest(sharded / entry["path"])["shard"]["count"] == 3


@pytest.mark.parametrize("stages", ["lexical", "dense", "hybrid"])
def test_sharded_search_equals_unsharded(sample_index, sharded, tiny_models, stages):
    reranker = str(tiny_models["reranker"])
    one = Searcher.load(sample_index, reranker=reranker, reranker_backend="torch")
    many = Searcher.load(sharded, reranker=reranker, reranker_backend="torch")
    assert type(many.collection).__name__ == "ShardedIndex" and many.has_dense and many.warnings == one.warnings
    for q in QUERIES:
        _assert_same(one.search(q, top_k=100, stages=stages, rerank=False),
                     many.search(q, top_k=100, stages=stages, rerank=False), tol=0.0)
    # reranking happens once, after the merge: the same cross-encoder scores on the same candidates
    _assert_same(one.search(QUERIES[0], top_k=20, stages=stages), many.search(QUERIES[0], top_k=20, stages=stages))
    assert many.document("health-001") == one.document("health-001")
    assert many.document("no-such-document") is None


def test_sharded_bm25_exact_on_a_larger_collection(tmp_path):
    """1,200 documents of different lengths in 4 shards: every score of the top 100 equal to the bit."""
    rng = random.Random(7)
    sentences = [s for d in sample_docs() for s in d["text"].split("።") if s.strip()]
    corpus = tmp_path / "big.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(1200):
            text = "።".join(rng.sample(sentences, rng.randint(1, 12))) + "።"
            f.write(json.dumps({"id": f"d{i}", "title": "", "text": text}, ensure_ascii=False) + "\n")
    build_index(corpus, tmp_path / "whole", dense_model=None, show_progress=False)
    split_index(tmp_path / "whole", tmp_path / "four", shards=4)
    one, many = (Searcher.load(tmp_path / d, reranker=None) for d in ("whole", "four"))
    words = [w for s in sentences for w in s.split()]
    for _ in range(40):
        q = " ".join(rng.sample(words, rng.randint(1, 4)))
        a, b = one.search(q, top_k=100, stages="lexical", rerank=False), many.search(q, top_k=100, stages="lexical", rerank=False)
        assert [r.doc_id for r in a.results] == [r.doc_id for r in b.results]
        assert [r.scores.bm25 for r in a.results] == [r.scores.bm25 for r in b.results]


def test_build_with_shards_and_rebuild_reuses_vectors(tmp_path, tiny_models, sample_index):
    out = tmp_path / "built-2"
    report = build_index(SAMPLE / "corpus.jsonl", out, dense_model=str(tiny_models["encoder"]), shards=2,
                         show_progress=False)
    assert len(report.manifest["shards"]) == 2 and report.embedded == report.passages
    one, many = Searcher.load(sample_index, reranker=None), Searcher.load(out, reranker=None)
    for q in QUERIES[:3]:
        _assert_same(one.search(q, top_k=50, rerank=False), many.search(q, top_k=50, rerank=False), tol=1e-6)
    again = build_index(SAMPLE / "corpus.jsonl", out, dense_model=str(tiny_models["encoder"]), shards=2,
                        show_progress=False)
    assert again.embedded == 0 and again.reused == again.passages
    assert again.changes["unchanged"] == again.documents and not again.notes
    whole = build_index(SAMPLE / "corpus.jsonl", out, dense_model=str(tiny_models["encoder"]), show_progress=False)
    assert whole.embedded == 0 and "shards" not in whole.manifest  # vectors reused across the change of layout
    assert whole.notes == [f"the index at {out} had 2 shards and is now written with 1 (unsharded); --shards 2 keeps its shards"]


def test_split_refuses_what_it_cannot_do(sample_index, sharded, tmp_path):
    with pytest.raises(ShardError, match="cannot cut 143 documents into 500 shards"):
        split_index(sample_index, tmp_path / "x", shards=500)
    with pytest.raises(ShardError, match="already sharded"):
        split_index(sharded, tmp_path / "y", shards=2)
    with pytest.raises(ShardError, match="another directory"):
        split_index(sample_index, sample_index, shards=2)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_split_info_query(run, sample_index, tmp_path, tiny_models):
    out = tmp_path / "cli-2"
    result = run("index", "split", sample_index, "--out", out, "--shards", "2")
    assert result.exit_code == 0 and result.output.startswith("Wrote 2 shards of ") and str(out) in result.output
    info = run("index", "info", out, "--verify")
    assert "\nshards            2 (85, 84 passages; BM25 with collection-wide statistics)\n" in info.output
    assert "\nchecksums         ok (" in info.output
    args = ["--reranker", tiny_models["reranker"], "--json", "--top-k", "20"]
    a = json.loads(run("query", sample_index, QUERIES[0], *args).stdout)
    b = json.loads(run("query", out, QUERIES[0], *args).stdout)
    for d in (a, b):
        d.pop("timings_ms")
    assert a == b
    bad = run("index", "split", sample_index, "--out", tmp_path / "z", "--shards", "999")
    assert bad.exit_code == 1 and bad.output.startswith("Error: cannot cut 143 documents") and "Traceback" not in bad.output


def test_eval_and_the_page_on_a_sharded_index(run, sharded, sample_index, tiny_models, monkeypatch):
    """A sharded index is searchable everywhere an index is: eval gives the same figures, the page the same cards."""
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    args = ["--queries", SAMPLE / "queries.jsonl", "--qrels", SAMPLE / "qrels.tsv", "--no-rerank", "--json"]
    assert json.loads(run("eval", sharded, *args).stdout) == json.loads(run("eval", sample_index, *args).stdout)

    def cards(index) -> list[str]:
        monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(index.parent))
        monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", str(tiny_models["reranker"]))
        monkeypatch.setenv("AMHARIC_SEARCH_DENSE_MODEL", str(tiny_models["encoder"]))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params.update({"lang": "en", "view": "expert", "q": QUERIES[0]})
        at.run()
        assert not at.exception, at.exception
        return [m.value for m in at.markdown if 'class="as-card"' in m.value]

    found = cards(sharded)
    assert len(found) >= 10 and found == cards(sample_index)


def test_service_serves_a_sharded_index(sharded, sample_index, tiny_models):
    from fastapi.testclient import TestClient

    from amharic_search.search.service.client import ServiceClient
    from amharic_search.search.service import SearchService, ServiceConfig, create_app

    service = SearchService(ServiceConfig(path=str(sharded), reranker=str(tiny_models["reranker"]), reload_interval=0))
    one = Searcher.load(sample_index, reranker=str(tiny_models["reranker"]))
    with TestClient(create_app(service)) as http:
        client = ServiceClient("http://testserver", http=http)
        assert client.info["passages"] == one.collection.num_passages and client.info["stages"] == ["bm25", "dense", "rerank"]
        _assert_same(one.search(QUERIES[0], top_k=10), client.search(QUERIES[0], top_k=10))
        assert client.document("health-001")["title"] == one.document("health-001")["title"]


# -- Ray: a real local cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from amharic_search.index.ray_embed import connect

    connect("local")
    yield ray
    ray.shutdown()


def _vectors(directory) -> np.ndarray:
    manifest = read_manifest(directory)
    if manifest.get("shards"):
        return np.concatenate([_vectors(directory / s["path"]) for s in manifest["shards"]])
    return DenseIndex.load(directory / "dense.faiss", manifest["dense"]["faiss"]).vectors()


def test_ray_build_equals_local_build_and_survives_a_killed_worker(ray_cluster, tiny_models, tmp_path):
    encoder = str(tiny_models["encoder"])
    local = build_index(SAMPLE / "corpus.jsonl", tmp_path / "local", dense_model=encoder, batch_size=2, name="x",
                        show_progress=False)
    killed = []

    def kill_a_worker(stage: str, fraction: float) -> None:
        # after the first embedding step is back, kill the encoder worker (steps are still queued on it)
        if stage == "embedding" and fraction > 0.3 and not killed:
            workers = processes("EncoderWorker")
            assert workers, "no encoder worker process found"
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    report = build_index(SAMPLE / "corpus.jsonl", tmp_path / "ray", dense_model=encoder, batch_size=2, ray="auto", name="x",
                         on_progress=kill_a_worker, show_progress=False)
    assert killed and report.embedded == local.embedded
    assert report.manifest["build"] == {"engine": "ray", "cluster": "this process's Ray cluster", "encoder_workers": 1,
                                        "device": "cpu"}
    # the same index: same passages in the same order, the same vectors (fp32, within 1e-5), same manifest
    a, b = Store(tmp_path / "local" / "store.sqlite"), Store(tmp_path / "ray" / "store.sqlite")
    assert [p.passage_id for p in a.passages(range(a.num_passages))] == [p.passage_id for p in b.passages(range(b.num_passages))]
    assert np.abs(_vectors(tmp_path / "local") - _vectors(tmp_path / "ray")).max() <= 1e-5
    ignore = {"created", "build", "files"}
    assert {k: v for k, v in local.manifest.items() if k not in ignore} == {k: v for k, v in report.manifest.items() if k not in ignore}
    # a rebuild with every vector reused starts no encoder worker, and says it was not embedded on Ray
    again = build_index(SAMPLE / "corpus.jsonl", tmp_path / "ray", dense_model=encoder, batch_size=2, ray="auto",
                        name="x", show_progress=False)
    assert again.embedded == 0 and "build" not in again.manifest
    deadline = time.monotonic() + 20  # the build let its workers go (ray.kill is asynchronous)
    while any(p.status() != "zombie" for p in processes("EncoderWorker")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(p.status() == "zombie" for p in processes("EncoderWorker"))


def test_ray_serve_answers_as_the_service_and_outlives_a_replica(ray_cluster, sharded, sample_index, tiny_models):
    from amharic_search.search.service import ray_serve
    from amharic_search.search.service.client import ServiceClient
    from amharic_search.search.service import ServiceConfig

    reranker = str(tiny_models["reranker"])
    config = ServiceConfig(path=str(sharded), reranker=reranker, reranker_backend="torch", reload_interval=0)
    url = ray_serve.deploy(config, address="auto", port=free_port(), replicas=2)
    try:
        one = Searcher.load(sample_index, reranker=reranker, reranker_backend="torch")
        client = ServiceClient(url, timeout=30)
        assert client.info["stages"] == ["bm25", "dense", "rerank"] and client.reranker.backend == "ray:torch"
        for q in QUERIES[:3]:
            _assert_same(one.search(q, top_k=10), client.search(q, top_k=10), tol=ACROSS_PROCESSES)
        assert client.document("health-001") == one.document("health-001")
        assert len(processes("ServeReplica:amharic-search:Shard-sample-3-")) == 3

        # clients keep querying while one API replica is killed: every request is answered
        answered, failed, stop = [], [], threading.Event()

        def query_loop(n: int) -> None:
            c = ServiceClient(url, timeout=30)
            i = 0
            while not stop.is_set():
                try:
                    answered.append(len(c.search(QUERIES[(n + i) % len(QUERIES)], top_k=5, rerank=False).results))
                except Exception as exc:  # noqa: BLE001 - counted
                    failed.append(repr(exc))
                i += 1

        threads = [threading.Thread(target=query_loop, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        replicas = processes("ServeReplica:amharic-search:Ingress")
        assert len(replicas) == 2
        before = len(answered)
        os.kill(replicas[0].pid, signal.SIGKILL)
        time.sleep(6)
        stop.set()
        for t in threads:
            t.join(60)
        assert not failed, failed[:3]
        assert len(answered) > before + 10  # still answering after the kill
    finally:
        ray_serve.shutdown(leave_cluster=False)


def test_cli_serve_ray_checks_before_starting_ray(run, tmp_path):
    result = run("serve", tmp_path / "nothing", "--ray")
    assert result.exit_code == 1 and "no such index directory" in result.output



def test_cli_serve_ray_warns_on_a_public_address_without_a_key(run, sample_index, monkeypatch):
    from amharic_search.search import cli

    deployed = []
    monkeypatch.setattr(cli, "serve_on_ray", lambda config, address, **kw: deployed.append((address, kw["host"])))
    result = run("serve", sample_index, "--ray", "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert "listening on 0.0.0.0 without --api-key" in result.output and deployed == [("auto", "0.0.0.0")]
    quiet = run("serve", sample_index, "--ray", "--host", "0.0.0.0", "--api-key", "k")
    assert quiet.exit_code == 0 and "without --api-key" not in quiet.output
