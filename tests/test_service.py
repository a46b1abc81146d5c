"""The search service (search/service.py) and its client (search/client.py), with the tiny models.

In-process tests use FastAPI's TestClient; one test starts `amharic-search serve` as a real server.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from amharic_search.search.cli import main
from amharic_search.search.service.client import ServiceClient, ServiceError
from amharic_search.search.schema import MAX_QUERY_CHARS, QueryError, RerankSkipped, SearchResponse
from amharic_search.search.searcher import Searcher
from amharic_search.search.service import SearchService, ServiceConfig, create_app

from conftest import ROOT, SAMPLE, sample_docs

QUERIES = ["የወባ በሽታ", "የቡና ምርት", "የአድዋ ጦርነት", "የኢትዮጵያ ቡና", "ትምህርት ቤት", "የዝናብ ወቅት", "ገበሬዎች", "ሐይቆች"]


def make_service(path, reranker=None, **config) -> SearchService:
    options = dict(reranker=str(reranker) if reranker else None, reranker_backend="torch", reload_interval=0)
    return SearchService(ServiceConfig(path=str(path), **{**options, **config}))


@pytest.fixture(scope="module")
def service(sample_index, tiny_models):
    svc = make_service(sample_index, tiny_models["reranker"])
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def http(service):
    with TestClient(create_app(service)) as c:
        yield c


def without_timings(d: dict) -> dict:
    """A response with its timing values left out (they differ from run to run; the keys must not)."""
    return {**d, "timings_ms": sorted(d["timings_ms"])}


def assert_no_traceback(r) -> None:
    assert "Traceback" not in r.text and 'File "' not in r.text


# -- the schema --------------------------------------------------------------------------------------


def test_search_answers_the_json_of_query_json(http, sample_index, tiny_models):
    runner = CliRunner()
    r = runner.invoke(main, ["query", str(sample_index), "የወባ በሽታ", "--json", "-k", "5", "--reranker",
                             str(tiny_models["reranker"]), "--reranker-backend", "torch"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    posted = http.post("/v1/search", json={"query": "የወባ በሽታ", "top_k": 5})
    got = http.get("/v1/search", params={"query": "የወባ በሽታ", "top_k": 5})
    assert posted.status_code == got.status_code == 200
    assert posted.headers["content-type"] == "application/json"
    assert without_timings(posted.json()) == without_timings(cli) == without_timings(got.json())
    assert cli["reranked"] is True and cli["stages"] == ["bm25", "dense", "rerank"] and cli["query_terms"]
    # the client reads it back into the same SearchResponse
    assert SearchResponse.from_dict(cli).to_dict() == cli


def test_search_stream_first_stage_then_reranked(http, searcher):
    r = http.post("/v1/search/stream", json={"query": "የቡና ምርት", "top_k": 4})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    first, final = (json.loads(line) for line in r.text.splitlines())
    assert first["reranked"] is False and final["reranked"] is True
    alone = searcher.search("የቡና ምርት", top_k=4, rerank=False).to_dict()
    assert [x["doc_id"] for x in first["results"]] == [x["doc_id"] for x in alone["results"]]
    assert all(x["scores"]["rerank"] is None for x in first["results"])
    whole = http.post("/v1/search", json={"query": "የቡና ምርት", "top_k": 4}).json()
    assert without_timings(final) == without_timings(whole)
    # without reranking: one line
    r = http.get("/v1/search/stream", params={"query": "የቡና ምርት", "rerank": "false"})
    assert len(r.text.splitlines()) == 1 and json.loads(r.text)["reranked"] is False


def test_searcher_search_stream_in_process(searcher):
    steps = list(searcher.search_stream("የአድዋ ጦርነት", top_k=3))
    assert [s.reranked for s in steps] == [False, True]
    assert steps[0].results[0].scores.rerank is None  # not changed by the reranking that followed
    assert without_timings(steps[1].to_dict()) == without_timings(searcher.search("የአድዋ ጦርነት", top_k=3).to_dict())
    assert len(list(searcher.search_stream("የአድዋ ጦርነት", rerank=False))) == 1
    with pytest.raises(QueryError):
        next(searcher.search_stream("  "))


def test_progressive_reranking_in_blocks(searcher):
    """blocks=(20,): the first 20 candidates reranked and shown, then all; the final list is search()'s."""
    steps = list(searcher.search_stream("የወባ በሽታ መከላከል", top_k=10, blocks=(20,)))
    assert [s.rerank_progress for s in steps] == [None, [20, 100], [100, 100]]
    first, partial, final = steps
    # the partial list: the first 20 candidates in the cross-encoder's order, then the others in first-stage order
    scored = [r for r in partial.results if r.scores.rerank is not None]
    assert partial.results[: len(scored)] == scored and all(r.ranks.fused <= 20 for r in scored)
    assert [r.scores.rerank for r in scored] == sorted((r.scores.rerank for r in scored), reverse=True)
    assert all(r.scores.rerank is None and r.ranks.fused > 20 for r in partial.results[len(scored):])
    whole = searcher.search("የወባ በሽታ መከላከል", top_k=10)
    assert [r.doc_id for r in final.results] == [r.doc_id for r in whole.results]
    assert np.allclose([r.scores.rerank for r in final.results], [r.scores.rerank for r in whole.results], atol=1e-5)
    assert whole.rerank_progress == [100, 100] and first.results == searcher.search("የወባ በሽታ መከላከል", rerank=False).results
    # each response keeps its own values: the blocks reranked later do not change an answer already given
    first, partial, final = searcher.search_stream("የወባ በሽታ መከላከል", top_k=30, blocks=(20,))
    assert [r.scores.rerank is None for r in partial.results] == [False] * 20 + [True] * 10
    assert all(r.scores.rerank is not None for r in final.results) and all(r.scores.rerank is None for r in first.results)


def test_progressive_reranking_stopped_by_the_deadline_keeps_the_blocks_done(searcher):
    calls = []

    def score(query, passages, **kwargs):
        calls.append(len(passages))
        if len(calls) > 1:
            raise RerankSkipped("reranking skipped: the deadline of 5 ms passed before the cross-encoder finished; "
                                "the results are in first-stage order")
        return searcher.score_passages(query, passages, **kwargs)

    *_, last = searcher.search_stream("የወባ በሽታ መከላከል", top_k=10, blocks=(20,), score=score)
    assert calls == [20, 80] and last.rerank_progress == [20, 100] and last.reranked
    assert last.warnings[-1].endswith("only the first 20 candidates are reranked")


def test_adaptive_depth_stops_when_blocks_stop_entering_the_top_k(searcher):
    """The rule scores min_depth candidates, then blocks while they enter the top 10; what it does
    online is what search.adaptive.simulate says, and the response records it."""
    from amharic_search.search.adaptive import AdaptiveDepth, simulate

    def scorer(values):
        calls = []

        def score(query, passages, **kwargs):
            calls.append(len(passages))
            return np.array([values[p.doc_id] for p in passages], dtype=np.float32)
        return score, calls

    query = "የወባ በሽታ መከላከል"
    first = searcher.search(query, top_k=100, rerank=False).results
    rule = AdaptiveDepth(min_depth=20, block=10, patience=1)
    # scores falling with the first-stage rank: the block after min_depth adds nothing, stop at 30
    falling = {r.doc_id: -float(r.rank) for r in first}
    score, calls = scorer(falling)
    out = searcher.search(query, top_k=10, score=score, adaptive=rule)
    assert calls == [20, 10] and out.rerank_progress == [30, 100]
    assert out.adaptive == {"min_depth": 20, "block": 10, "patience": 1, "scored": 30, "stopped": True}
    assert [r.doc_id for r in out.results] == [r.doc_id for r in first[:10]] and out.reranked
    assert simulate([falling[r.doc_id] for r in first], rule) == 30
    # a late candidate that enters the top 10 keeps it going one block more, and is found
    late = dict(falling, **{first[25].doc_id: 10.0})
    score, calls = scorer(late)
    out = searcher.search(query, top_k=10, score=score, adaptive=rule)
    assert calls == [20, 10, 10] and out.adaptive["scored"] == 40 and out.results[0].doc_id == first[25].doc_id
    assert simulate([late[r.doc_id] for r in first], rule) == 40
    # patience 2 needs two blocks in a row without an entry
    score, calls = scorer(falling)
    assert searcher.search(query, score=score, adaptive=AdaptiveDepth(min_depth=20, block=10, patience=2)).adaptive["scored"] == 40
    # off: every candidate, no rule in the response; with progressive blocks the steps include the rule's
    score, calls = scorer(falling)
    whole = searcher.search(query, score=score)
    assert calls == [100] and whole.adaptive is None and whole.rerank_progress == [100, 100]
    score, calls = scorer(falling)
    steps = list(searcher.search_stream(query, score=score, adaptive=rule, blocks=(15,)))
    assert [s.rerank_progress for s in steps] == [None, [15, 100], [20, 100], [30, 100]] and calls == [15, 5, 10]
    assert steps[-1].adaptive["stopped"] and not steps[1].adaptive["stopped"]
    with pytest.raises(ValueError):
        AdaptiveDepth(block=0)


def test_service_client_and_cli_adaptive_depth(http, service, sample_index, tiny_models):
    r = http.post("/v1/search", json={"query": "የወባ በሽታ", "top_k": 5, "adaptive": True}).json()
    assert r["adaptive"]["min_depth"] >= 1 and r["rerank_progress"][0] == r["adaptive"]["scored"]
    assert http.post("/v1/search", json={"query": "የወባ በሽታ"}).json()["adaptive"] is None
    cli = CliRunner().invoke(main, ["query", str(sample_index), "የወባ በሽታ", "--json", "-k", "5", "--adaptive", "--reranker",
                                    str(tiny_models["reranker"]), "--reranker-backend", "torch"], catch_exceptions=False)
    assert cli.exit_code == 0, cli.output
    assert without_timings(json.loads(cli.stdout)) == without_timings(r)
    client = ServiceClient("http://testserver", http=http)
    assert client.search("የወባ በሽታ", top_k=5, adaptive=True).adaptive == r["adaptive"]


def test_service_streams_progressive_blocks(http):
    r = http.post("/v1/search/stream", json={"query": "የቡና ምርት", "top_k": 4, "blocks": [10, 30]})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [d["rerank_progress"] for d in lines] == [None, [10, 100], [30, 100], [100, 100]]
    r = http.get("/v1/search/stream", params=[("query", "የቡና ምርት"), ("blocks", "10")])
    assert [json.loads(line)["rerank_progress"] for line in r.text.splitlines()] == [None, [10, 100], [100, 100]]
    bad = http.post("/v1/search", json={"query": "የቡና ምርት", "blocks": [10]})
    assert bad.status_code == 422 and "for /v1/search/stream" in bad.json()["message"]


# -- the other endpoints -----------------------------------------------------------------------------


def test_documents_indexes_health_ready_metrics(http, service, searcher):
    r = http.get("/v1/documents/hist-001")
    assert r.status_code == 200 and r.json() == searcher.document("hist-001")
    assert http.get("/v1/health").json() == {"status": "ok"}
    ready = http.get("/v1/ready").json()
    assert ready["ready"] is True and ready["indexes"]["sample"]["stages"] == ["bm25", "dense", "rerank"]
    served = http.get("/v1/indexes").json()
    assert served["default"] == "sample" and served["limits"]["top_k"] == 100
    (info,) = served["indexes"]
    assert info["documents"] == 143 and info["has_dense"] and info["has_reranker"] and info["warnings"] == []
    assert info["analyzer"] == searcher.manifest["analyzer"] and "files" not in info["manifest"]
    assert "/" not in info["manifest"]["corpus"]["path"]  # no server paths
    assert http.get("/v1/indexes/sample").json()["name"] == "sample"
    http.post("/v1/search", json={"query": "ቡና"})
    text = http.get("/v1/metrics").text
    for name in ("amharic_search_requests_total", "amharic_search_stage_seconds_bucket", "amharic_search_rerank_queue_jobs",
                 "amharic_search_rerank_cache_hits_total", "amharic_search_rerank_batch_pairs_bucket"):
        assert name in text
    assert 'endpoint="/v1/search"' in text
    docs = http.get("/openapi.json").json()
    assert {"/v1/search", "/v1/search/stream", "/v1/documents/{doc_id}", "/v1/indexes", "/v1/ready"} <= set(docs["paths"])
    assert http.get("/docs").status_code == 200


def test_every_error_is_json_with_the_command_line_message(http, lexical_index):
    cases = [
        (http.post("/v1/search", json={"query": "   "}), 400, "bad_query", "the query is empty: type a word or a question"),
        (http.get("/v1/search", params={"query": "x" * (MAX_QUERY_CHARS + 1)}), 422, "invalid_request", "the query is too long"),
        (http.post("/v1/search", json={"query": "ቡና", "top_k": 0}), 422, "invalid_request", "top_k:"),
        (http.post("/v1/search", json={"query": "ቡና", "top_k": 101}), 422, "invalid_request", "top_k:"),
        (http.get("/v1/search", params={"query": "ቡና", "candidates": "many"}), 422, "invalid_request", "candidates:"),
        (http.post("/v1/search", json={"query": "ቡና", "stages": "magic"}), 422, "invalid_request", "stages:"),
        (http.post("/v1/search", json={"query": "ቡና", "topk": 3}), 422, "invalid_request", "topk:"),
        (http.post("/v1/search", json={"top_k": 3}), 422, "invalid_request", "query:"),
        (http.post("/v1/search", content=b"{not json", headers={"content-type": "application/json"}), 422, "invalid_request",
         "the request body is not valid JSON: expecting property name enclosed in double quotes at line 1, column 2"),
        (http.post("/v1/search", content='{"query": "ቡና",\n "top_k": 3,}'.encode(), headers={"content-type": "application/json"}),
         422, "invalid_request", "the request body is not valid JSON: "),
        (http.post("/v1/search", content=b"x" * 70_000, headers={"content-type": "application/json"}), 413, "too_large", "bytes"),
        (http.post("/v1/search", content=iter([b"x" * 40_000] * 2), headers={"content-type": "application/json"}), 413,
         "too_large", "bytes"),  # chunked, no content-length
        (http.get("/v1/search", params={"query": "ቡና", "index": "nope"}), 404, "unknown_index", "no index 'nope'"),
        (http.get("/v1/documents/no-such-doc"), 404, "unknown_document", "no document 'no-such-doc'"),
        (http.get("/v1/nowhere"), 404, "not_found", "no such endpoint"),
        (http.delete("/v1/search"), 405, "method_not_allowed", "DELETE"),
    ]
    for r, status, code, message in cases:
        assert r.status_code == status, (r.request.url, r.text)
        assert r.json()["error"] == code and message in r.json()["message"], r.text
        assert_no_traceback(r)
    # an index without embeddings: dense-only and nothing-searchable queries, as the command line says them
    with TestClient(create_app(make_service(lexical_index))) as lex:
        r = lex.post("/v1/search", json={"query": "ቡና", "stages": "dense"})
        assert r.status_code == 400 and "dense retrieval is not available" in r.json()["message"]
        r = lex.post("/v1/search", json={"query": "?!", "stages": "lexical"})
        cli = CliRunner().invoke(main, ["query", str(lexical_index), "?!", "--no-rerank", "--no-dense"])
        assert r.status_code == 400 and cli.exit_code == 1 and cli.stderr.strip() == f"Error: {r.json()['message']}"


def test_an_unexpected_error_is_a_json_500_without_traceback(sample_index, monkeypatch):
    with TestClient(create_app(make_service(sample_index, use_dense=False)), raise_server_exceptions=False) as c:
        monkeypatch.setattr(Searcher, "document", lambda self, doc_id: 1 / 0)
        r = c.get("/v1/documents/hist-001")
    assert r.status_code == 500 and r.json()["error"] == "internal"
    assert_no_traceback(r) and "ZeroDivision" not in r.text


def test_index_missing_or_damaged(tmp_path, sample_index):
    from amharic_search.index.manifest import IndexFormatError

    with pytest.raises(IndexFormatError, match="no such index directory"):
        make_service(tmp_path / "nope")
    r = CliRunner().invoke(main, ["serve", str(tmp_path / "nope"), "--no-rerank"])
    assert r.exit_code == 1 and "no such index directory" in r.stderr and "Traceback" not in r.output
    damaged = tmp_path / "damaged"
    shutil.copytree(sample_index, damaged)
    with open(damaged / "store.sqlite", "r+b") as f:
        f.truncate(100)
    with pytest.raises(IndexFormatError, match="wrong size"):
        make_service(damaged, use_dense=False)
    # in a folder of indexes, a damaged one is left out (and said so); the others are served
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(sample_index, root / "good")
    shutil.move(damaged, root / "bad")
    svc = make_service(root, use_dense=False)
    with TestClient(create_app(svc)) as c:
        served = c.get("/v1/indexes").json()
        assert [i["name"] for i in served["indexes"]] == ["good"] and "wrong size" in served["unavailable"]["bad"]
        # an index that disappears while served: its loaded copy keeps answering, and /v1/indexes says so
        shutil.rmtree(root / "good")
        svc.check_reload()
        assert c.post("/v1/search", json={"query": "ቡና", "index": "good"}).status_code == 200
        assert "the index is gone" in c.get("/v1/indexes/good").json()["reload_error"]
    svc.close()


# -- models: the missing-model policy ----------------------------------------------------------------


def test_missing_models_skip_their_stage_with_a_note_or_fail_with_strict(sample_index, tmp_path):
    from amharic_search.index.models import ModelUnavailableError

    svc = make_service(sample_index, tmp_path / "no-reranker", dense_model=str(tmp_path / "no-encoder"),
                       allow_other_encoder=True)
    with TestClient(create_app(svc)) as c:
        ready = c.get("/v1/ready")
        assert ready.status_code == 200 and ready.json()["indexes"]["sample"]["stages"] == ["bm25"]
        notes = c.get("/v1/indexes").json()["indexes"][0]["warnings"]
        assert any(n.startswith("dense retrieval skipped: model") for n in notes)
        assert any(n.startswith("reranking skipped: model") and "no-reranker" in n for n in notes)
        d = c.post("/v1/search", json={"query": "ቡና"}).json()
        assert d["reranked"] is False and d["stages"] == ["bm25"] and any("reranking skipped" in w for w in d["warnings"])
    svc.close()
    with pytest.raises(ModelUnavailableError, match="no-reranker"):
        make_service(sample_index, tmp_path / "no-reranker", strict=True)
    r = CliRunner().invoke(main, ["serve", str(sample_index), "--reranker", str(tmp_path / "no-reranker"), "--strict"])
    assert r.exit_code == 1 and "no-reranker" in r.stderr and "--no-rerank" in r.stderr and "Traceback" not in r.output


# -- micro-batching and deadlines --------------------------------------------------------------------


def test_concurrent_answers_equal_sequential_ones(sample_index, tiny_models):
    svc = make_service(sample_index, tiny_models["reranker"], batch_window_ms=200)
    answers: dict[str, dict] = {}
    barrier = threading.Barrier(len(QUERIES))
    with TestClient(create_app(svc)) as c:
        def ask(q):
            barrier.wait()
            answers[q] = c.post("/v1/search", json={"query": q, "top_k": 10, "candidates": 30}).json()

        threads = [threading.Thread(target=ask, args=(q,)) for q in QUERIES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert svc.batcher.largest_batch >= 2  # queries were scored together
    svc.close()
    alone = Searcher.load(sample_index, reranker=str(tiny_models["reranker"]), reranker_backend="torch")  # a cold cache
    for q in QUERIES:
        expected = alone.search(q, top_k=10, candidates=30).to_dict()
        assert answers[q]["reranked"] and without_timings(answers[q]) == without_timings(expected), q


def test_packed_batches_give_the_same_rankings(sample_index, tiny_models):
    svc = make_service(sample_index, tiny_models["reranker"], batch_window_ms=200, batching="packed")
    answers: dict[str, dict] = {}
    with TestClient(create_app(svc)) as c:
        threads = [threading.Thread(target=lambda q=q: answers.update({q: c.post("/v1/search", json={"query": q}).json()}))
                   for q in QUERIES[:4]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    svc.close()
    alone = Searcher.load(sample_index, reranker=str(tiny_models["reranker"]), reranker_backend="torch")
    for q in QUERIES[:4]:
        expected = alone.search(q).to_dict()["results"]
        assert [r["doc_id"] for r in answers[q]["results"]] == [r["doc_id"] for r in expected]
        assert [r["scores"]["rerank"] for r in answers[q]["results"]] == pytest.approx([r["scores"]["rerank"] for r in expected],
                                                                                         abs=1e-5)


def test_score_many_equals_score_alone(searcher):
    rr = searcher.reranker
    texts = [d["text"] for d in sample_docs()[:40]]
    from amharic_search.search.rerank import Reranker

    fresh = Reranker(rr.model, rr.name, backend="torch")
    alone = [fresh.score("የወባ በሽታ", texts), fresh.score("ቡና", texts[5:30])]
    other = Reranker(rr.model, rr.name, backend="torch")
    together = other.score_many([("የወባ በሽታ", texts), ("ቡና", texts[5:30]), ("የወባ በሽታ", texts)])
    assert (together[0] == alone[0]).all() and (together[1] == alone[1]).all() and (together[2] == alone[0]).all()
    assert other.cache_misses == 65 and other.cache_hits == 0  # the repeated query was scored once


def test_deadline_answers_with_the_first_stage_list(sample_index, tiny_models, monkeypatch):
    svc = make_service(sample_index, tiny_models["reranker"])
    reranker = svc.entries["sample"].searcher.reranker
    slow = reranker.score_many

    def score_many(jobs, **kwargs):
        time.sleep(0.6)
        return slow(jobs, **kwargs)

    monkeypatch.setattr(reranker, "score_many", score_many)
    with TestClient(create_app(svc)) as c:
        t = time.monotonic()
        d = c.post("/v1/search", json={"query": "የወባ በሽታ", "deadline_ms": 150}).json()
        assert time.monotonic() - t < 0.55
        assert d["reranked"] is False and d["timings_ms"]["rerank"] is None
        assert any("deadline of 150 ms passed" in w for w in d["warnings"])
        first = c.post("/v1/search", json={"query": "የወባ በሽታ", "rerank": False}).json()
        assert [r["doc_id"] for r in d["results"]] == [r["doc_id"] for r in first["results"]]
        lines = c.post("/v1/search/stream", json={"query": "የቡና ምርት", "deadline_ms": 100}).text.splitlines()
        assert [json.loads(x)["reranked"] for x in lines] == [False, False] and "deadline" in lines[1]
        d = c.post("/v1/search", json={"query": "የወባ በሽታ", "deadline_ms": 20_000}).json()
        assert d["reranked"] is True
        assert "amharic_search_rerank_deadline_skips_total 2.0" in c.get("/v1/metrics").text
    svc.close()


# -- reload after a rebuild --------------------------------------------------------------------------


def test_a_rebuilt_index_is_picked_up_with_requests_in_flight(tmp_path, sample_index, tiny_models, monkeypatch):
    from amharic_search.index.build import build_index

    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    svc = make_service(index, tiny_models["reranker"], reload_interval=0.05)
    old = svc.entries["idx"].searcher
    reranker = old.reranker
    release, entered = threading.Event(), threading.Event()
    slow = reranker.score_many

    def score_many(jobs, **kwargs):  # holds the query "የወባ በሽታ" in the cross-encoder until released
        if any(q == "የወባ በሽታ" for q, _ in jobs):
            entered.set()
            release.wait(30)
        return slow(jobs, **kwargs)

    monkeypatch.setattr(reranker, "score_many", score_many)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(create_app(svc)) as c:
        held: dict = {}
        holder = threading.Thread(target=lambda: held.update(c.post("/v1/search", json={"query": "የወባ በሽታ"}).json()))
        holder.start()
        assert entered.wait(30)

        def hammer(q):  # requests that start and end during the rebuild and the swap (the cross-encoder is held)
            while not stop.is_set():
                statuses.append(c.post("/v1/search", json={"query": q, "rerank": False}).status_code)
                statuses.append(c.get("/v1/documents/hist-001").status_code)

        workers = [threading.Thread(target=hammer, args=(q,)) for q in ("ቡና", "ትምህርት")]
        for w in workers:
            w.start()
        corpus = tmp_path / "corpus.jsonl"
        new = {"id": "new-001", "title": "ኳንተም", "text": "ኳንተምኮምፒውተር አዲስ የምርምር ዘርፍ ነው።"}
        corpus.write_text((SAMPLE / "corpus.jsonl").read_text(encoding="utf-8") + json.dumps(new, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        build_index(corpus, index, dense_model=str(tiny_models["encoder"]), show_progress=False)  # swaps the directory
        deadline = time.monotonic() + 30
        while c.get("/v1/indexes/idx").json()["documents"] != 144 and time.monotonic() < deadline:
            time.sleep(0.05)
        release.set()
        holder.join(30)
        stop.set()
        for w in workers:
            w.join(30)
        assert c.get("/v1/indexes/idx").json()["documents"] == 144
        found = c.post("/v1/search", json={"query": "ኳንተምኮምፒውተር", "stages": "lexical", "rerank": False}).json()
        assert found["results"][0]["doc_id"] == "new-001"
        assert c.get("/v1/documents/new-001").status_code == 200
    svc.close()
    assert held["reranked"] is True and len(held["results"]) == 10  # the request in flight finished on the old index
    assert len(statuses) > 10 and set(statuses) == {200}
    assert svc.entries["idx"].searcher is not old and svc.entries["idx"].searcher.encoder is old.encoder  # models reused


# -- safety and operations ---------------------------------------------------------------------------


def test_api_key_cors_and_access_log(sample_index, caplog):
    svc = make_service(sample_index, use_dense=False, api_key="s3cret")
    with TestClient(create_app(svc)) as c:
        r = c.get("/v1/search", params={"query": "ቡና"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert c.get("/v1/indexes", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/v1/health").status_code == 200  # liveness needs no key
        assert c.get("/v1/search", params={"query": "ቡና"}, headers={"X-API-Key": "s3cret"}).status_code == 200
        with caplog.at_level(logging.INFO, logger="amharic_search.access"):
            r = c.get("/v1/search", params={"query": "ቡና"}, headers={"Authorization": "Bearer s3cret", "Origin": "https://x.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # CORS off by default
    svc.close()
    line = json.loads([rec.getMessage() for rec in caplog.records if rec.name == "amharic_search.access"][-1])
    assert line["path"] == "/v1/search" and line["status"] == 200 and line["index"] == "sample"
    assert line["stages"] == ["bm25"] and line["reranked"] is False  # what ran (hybrid was asked: no encoder here)
    assert set(line["stages_ms"]) == {"bm25", "dense", "fusion", "rerank", "total"} and line["ms"] > 0
    assert "ቡና" not in json.dumps(line, ensure_ascii=False)  # the query text is not logged
    svc = make_service(sample_index, use_dense=False, cors_origins=["https://x.example"])
    with TestClient(create_app(svc)) as c:
        r = c.get("/v1/health", headers={"Origin": "https://x.example"})
        assert r.headers["access-control-allow-origin"] == "https://x.example"
    svc.close()


# -- the client --------------------------------------------------------------------------------------


def test_service_client_has_the_searcher_surface(http, searcher):
    client = ServiceClient("http://testserver", http=http)
    assert client.manifest["corpus"]["documents"] == 143 and client.has_dense and client.has_reranker
    assert client.warnings == [] and client.reranker.backend == "torch" and client.fusion == searcher.fusion
    assert client.analyzer.tokens("የቡና ምርት") == searcher.analyzer.tokens("የቡና ምርት")
    got = client.search("የቡና ምርት", top_k=3, candidates=20)
    expected = searcher.search("የቡና ምርት", top_k=3, candidates=20)
    assert without_timings(got.to_dict()) == without_timings(expected.to_dict())
    steps = list(client.search_stream("የቡና ምርት", top_k=3, candidates=20))
    assert [s.reranked for s in steps] == [False, True] and steps[1].results == got.results
    assert client.document("hist-001") == searcher.document("hist-001") and client.document("no/such doc?") is None
    with pytest.raises(QueryError, match="the query is empty: type a word or a question"):
        client.search("  ")
    with pytest.raises(ServiceError) as err:
        client.search("ቡና", top_k=0)
    assert err.value.status == 422
    with pytest.raises(TypeError):
        client.search("ቡና", weights={"bm25": 1})
    with pytest.raises(ServiceError) as err:
        ServiceClient("http://127.0.0.1:9", timeout=2).search("ቡና")
    assert err.value.status == 0 and "cannot be reached" in str(err.value)


# -- fuzzing from the OpenAPI schema -----------------------------------------------------------------


def test_fuzzing_from_the_openapi_schema_finds_no_server_error(service):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, case.query, case.body, response.text[:200])
            if "stream" not in case.path and "metrics" not in case.path:
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                         response_schema_conformance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n".join(failures)


# -- a real server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_answers_over_http_and_stops_cleanly(sample_index, tiny_models):
    servers = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        port = free_port()
        cmd = [sys.executable, "-m", "amharic_search.search", "serve", str(sample_index), "--port", str(port), "--reranker",
               str(tiny_models["reranker"]), "--reranker-backend", "torch", "--reload-interval", "0"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        servers.append((sig, port, proc))
    alone = Searcher.load(sample_index, reranker=str(tiny_models["reranker"]), reranker_backend="torch")
    expected = [r.doc_id for r in alone.search("የአድዋ ጦርነት", top_k=3).results]
    try:
        for sig, port, proc in servers:
            client = ServiceClient(f"http://127.0.0.1:{port}", timeout=5)
            deadline = time.monotonic() + 120
            while not client.health():
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            response = client.search("የአድዋ ጦርነት", top_k=3)
            assert response.reranked and [r.doc_id for r in response.results] == expected and len(expected) == 3
            assert [s.reranked for s in client.search_stream("የአድዋ ጦርነት", top_k=3)] == [False, True]
            assert client.ready()["ready"] is True
            client.close()
            proc.send_signal(sig)
        for sig, port, proc in servers:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, (sig, err[-2000:])
            assert "Traceback" not in err and '"path": "/v1/search"' in err  # the access log
    finally:
        for _, _, proc in servers:
            if proc.poll() is None:
                proc.kill()


def test_a_bad_json_body_is_said_with_where(http):
    body = '{"query": "ቡና",\n "top_k": 3,}'
    with pytest.raises(json.JSONDecodeError) as exc:
        json.loads(body)
    r = http.post("/v1/search", content=body.encode(), headers={"content-type": "application/json"})
    what = exc.value.msg[0].lower() + exc.value.msg[1:]
    assert r.status_code == 422 and r.json() == {
        "error": "invalid_request",
        "message": f"the request body is not valid JSON: {what} at line 2, column {exc.value.colno}"}


def test_api_docs_are_served_from_the_package(http):
    """/docs and /redoc reference only the service's own assets (fastapi-offline), so they work offline."""
    import re

    for path in ("/docs", "/redoc"):
        page = http.get(path)
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text) + re.findall(r"url: ?'([^']+)'", page.text)
        assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN or Google Fonts
        for url in urls:
            if url.startswith("/static-offline-docs/"):
                assert http.get(url).status_code == 200 and len(http.get(url).content) > 1000
