import threading
import time

import numpy as np
import pytest

from amharic_search.index.layout import searchable_text
from amharic_search.index.manifest import IndexFormatError
from amharic_search.index.models import ModelUnavailableError, load_cross_encoder
from amharic_search.search import QueryError, Searcher


def test_all_stages_run_and_report(searcher):
    r = searcher.search("የወባ በሽታ መከላከል", top_k=5)
    assert r.stages == ["bm25", "dense", "rerank"]
    assert len(r.results) == 5
    assert [x.rank for x in r.results] == [1, 2, 3, 4, 5]
    assert len({x.doc_id for x in r.results}) == 5  # one result per document
    for key in ("bm25", "dense", "fusion", "rerank", "total"):
        assert r.timings_ms[key] is not None and r.timings_ms[key] >= 0
    for x in r.results:
        assert x.scores.fused is not None and x.scores.rerank is not None
        assert x.ranks.rerank is not None
    assert r.fusion == {"method": "weighted", "weights": {"bm25": 0.7, "dense": 0.3}, "normalization": "zscore", "depth": 300}


def test_final_order_is_the_cross_encoders_order(searcher, tiny_models):
    query = "የቡና ወጪ ንግድ"
    first, cands = searcher.first_stage(query)
    final = searcher.search(query, top_k=100)
    # score every candidate independently with a freshly loaded CrossEncoder
    ce = load_cross_encoder(str(tiny_models["reranker"]))
    passages = searcher.collection.passages([c.row for c in cands])
    direct = ce.predict([(first.query, searchable_text(p.title, p.text)) for p in passages])
    best = {}
    for p, s in zip(passages, direct):
        best[p.doc_id] = max(best.get(p.doc_id, -np.inf), float(s))
    got = [x.scores.rerank for x in final.results]
    assert got == sorted(got, reverse=True)
    assert {x.doc_id for x in final.results} == set(best)
    # each document carries its best passage's cross-encoder score (batching changes the last bits)
    np.testing.assert_allclose(got, [best[x.doc_id] for x in final.results], rtol=1e-4, atol=1e-6)
    direct_in_final_order = [best[x.doc_id] for x in final.results]
    assert all(a >= b - 1e-5 for a, b in zip(direct_in_final_order, direct_in_final_order[1:]))
    # and it differs from the first-stage order (the reranker really reordered)
    assert [x.doc_id for x in final.results] != [x.doc_id for x in searcher.documents(cands, 100)]


def test_rrf_candidates_hand_checked(searcher):
    resp, cands = searcher.first_stage("የአድዋ ጦርነት", fusion="rrf", rrf_k=60, weights={"bm25": 1.0, "dense": 1.0},
                                       depth=20, candidates=100)
    for c in cands:
        expected = sum(1 / (60 + r) for r in (c.ranks.bm25, c.ranks.dense) if r is not None)
        assert c.scores.fused == pytest.approx(expected)
    assert [c.ranks.fused for c in cands] == list(range(1, len(cands) + 1))
    assert len(cands) <= 40


def test_stage_toggles(searcher):
    lex = searcher.search("ቡና", stages="lexical", rerank=False)
    assert lex.stages == ["bm25"] and lex.timings_ms["dense"] is None and lex.timings_ms["rerank"] is None
    assert all(x.scores.dense is None and x.scores.rerank is None for x in lex.results)
    dense = searcher.search("ቡና", stages="dense", rerank=False)
    assert dense.stages == ["dense"] and all(x.scores.bm25 is None for x in dense.results)
    weighted = searcher.search("ቡና", fusion="weighted", rerank=False)
    assert weighted.fusion["method"] == "weighted"
    assert searcher.search("ቡና", fusion="rrf", rerank=False).fusion["method"] == "rrf"
    assert searcher.search("ቡና", rerank_depth=5).stages[-1] == "rerank"


def test_json_schema(searcher):
    d = searcher.search("የኢትዮጵያ ቡና", top_k=3).to_dict()
    assert set(d) >= {"query", "results", "timings_ms"}
    assert set(d["timings_ms"]) == {"bm25", "dense", "fusion", "rerank", "total"}
    for r in d["results"]:
        assert set(r) >= {"rank", "doc_id", "passage_id", "text", "scores"}
        assert set(r["scores"]) == {"bm25", "dense", "fused", "rerank"}
        assert r["passage_id"].startswith(r["doc_id"] + "#")


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query(searcher, query):
    with pytest.raises(QueryError, match="empty"):
        searcher.search(query)


def test_punctuation_only_query(lexical_index):
    s = Searcher.load(lexical_index, reranker=None)
    with pytest.raises(QueryError, match="no searchable words"):
        s.search("።።። ፣፣", rerank=False)


def test_unknown_terms_dense_still_answers(searcher):
    r = searcher.search("ዝዝዝዝዝ ቅቅቅቅቅ", rerank=False)
    assert r.lexical_hits == 0 and r.results
    assert any("no passage contains a word" in w for w in r.warnings)


@pytest.mark.parametrize("query", ["x" * 10_000, "ቡና \x00\x07 ሻይ", "ቡና \ud800 ሻይ", "☕ ቡና 😀", "coffee ቡና"])
def test_odd_queries_do_not_crash(searcher, query):
    r = searcher.search(query, rerank=False)
    assert len(r.query) <= 2000 and "\x00" not in r.query


def test_missing_model_is_a_clear_fast_error(sample_index, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        Searcher.load(sample_index, reranker="rasyosef/reranker-amharic-medium", strict=True)
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert "rasyosef/reranker-amharic-medium" in msg and "--no-rerank" in msg and "models download" in msg
    with pytest.raises(ModelUnavailableError, match="no model directory"):
        Searcher.load(sample_index, reranker=str(tmp_path / "no-such-model"), strict=True)


def test_non_strict_load_degrades_with_warning(sample_index):
    s = Searcher.load(sample_index, reranker="rasyosef/reranker-amharic-medium", strict=False)
    assert not s.has_reranker and s.has_dense
    assert any("reranker-amharic-medium" in w for w in s.warnings)
    r = s.search("ቡና")
    assert r.stages == ["bm25", "dense"] and r.results


def test_pickled_weights_are_refused(tmp_path, tiny_models):
    import shutil

    bad = tmp_path / "pickled"
    shutil.copytree(tiny_models["reranker"], bad)
    (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    with pytest.raises(ModelUnavailableError, match="safetensors"):
        load_cross_encoder(str(bad))


def test_dense_dimension_mismatch(sample_index, tmp_path, tiny_models):
    from tiny_models import build_encoder, train_tokenizer

    tok = train_tokenizer(["ቡና ሻይ ወተት ጤና"] * 20, vocab_size=60)
    other = build_encoder(tmp_path / "enc48", tok, hidden=48)
    with pytest.raises(IndexFormatError, match="fingerprint"):
        Searcher.load(sample_index, dense_model=str(other), reranker=None)
    with pytest.raises(IndexFormatError, match="32 dimensions.*48-dimensional"):
        Searcher.load(sample_index, dense_model=str(other), reranker=None, allow_other_encoder=True)


def test_concurrent_searches_match_sequential(searcher):
    queries = ["የወባ በሽታ", "የቡና ምርት", "አጼ ቴዎድሮስ", "የኢንተርኔት ማጭበርበር", "የጤፍ ምርት", "ማራቶን"]
    expected = {q: [x.doc_id for x in searcher.search(q, top_k=5).results] for q in queries}
    got, errors = {}, []

    def work(q):
        try:
            for _ in range(3):
                ids = [x.doc_id for x in searcher.search(q, top_k=5).results]
                assert ids == expected[q]
            got[q] = True
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == len(queries)


def test_lexical_ranks_documents_and_picks_their_best_passage(searcher):
    terms = searcher.analyzer.tokens("የወባ በሽታ ምልክቶችና መከላከያ")
    rows, scores = searcher.collection.lexical(terms, 20)
    doc_rows, doc_scores = searcher.collection.bm25_docs.top_k(terms, 20)
    np.testing.assert_allclose(scores, doc_scores)
    passage_scores = searcher.collection.bm25.scores(terms)
    passages = searcher.collection.passages(rows.tolist())
    for p, d in zip(passages, doc_rows.tolist()):
        start, end = int(searcher.collection.doc_offsets[d]), int(searcher.collection.doc_offsets[d + 1])
        assert start <= p.row < end
        assert p.row == start + int(np.argmax(passage_scores[start:end]))  # the best, the first on ties
    assert "long-004" in [p.doc_id for p in passages]  # the long malaria guide, split into passages


def test_dense_ranks_documents_by_their_best_passage(searcher):
    query = "የወባ በሽታ ምልክቶችና መከላከያ"
    rows, scores = searcher.first.dense_retrieve(query, 140)  # 140 of the 143 documents (155 passages)
    docs = searcher.collection.document_of(rows)
    assert len(set(docs.tolist())) == len(docs) == 140  # one entry per document
    assert np.all(np.diff(scores) <= 1e-6)
    # each document's score is its best passage's: compare with exhaustive passage scores
    from amharic_search.index.dense import encode

    qvec = encode(searcher.encoder, [query], kind="query")[0]
    all_scores = searcher.collection.vectors.vectors() @ qvec
    for row, doc, score in zip(rows.tolist(), docs.tolist(), scores.tolist()):
        start, end = int(searcher.collection.doc_offsets[doc]), int(searcher.collection.doc_offsets[doc + 1])
        assert start <= row < end
        assert score == pytest.approx(all_scores[start:end].max(), abs=1e-5)
    top_docs = np.argsort([-all_scores[searcher.collection.doc_offsets[d]:searcher.collection.doc_offsets[d + 1]].max()
                           for d in range(len(searcher.collection.doc_offsets) - 1)])[:140]
    assert set(top_docs.tolist()) == set(docs.tolist())


def test_fusion_joins_the_evidence_of_a_document(searcher):
    """A document found by both retrievers is one candidate with both scores, whichever passages they chose."""
    resp, cands = searcher.first_stage("የወባ በሽታ ምልክቶችና መከላከያ", fusion="rrf", rrf_k=60, depth=140, candidates=300)
    docs = searcher.collection.document_of([c.row for c in cands]).tolist()
    assert len(docs) == len(set(docs))
    lex_rows, _ = searcher.collection.lexical(searcher.analyzer.tokens(resp.query), 140)
    dense_rows, _ = searcher.first.dense_retrieve(resp.query, 140)
    both = set(searcher.collection.document_of(lex_rows).tolist()) & set(searcher.collection.document_of(dense_rows).tolist())
    assert both
    for c, doc in zip(cands, docs):
        assert (c.ranks.bm25 is not None and c.ranks.dense is not None) == (doc in both)
    # the long malaria guide has several passages; it is one candidate
    assert sum(p.doc_id == "long-004" for p in searcher.collection.passages([c.row for c in cands])) == 1


def test_reranker_cache_returns_the_same_scores(tiny_models):
    from amharic_search.search.rerank import Reranker

    rr = Reranker.load(str(tiny_models["reranker"]))
    passages = ["የቡና ምርት በኢትዮጵያ", "ጤና ጣቢያ", "አጭር"]
    first = rr.score("ቡና", passages)
    calls = []
    original = rr._predict
    rr._predict = lambda pairs, batch_size, max_length: (calls.append(len(pairs)), original(pairs, batch_size, max_length))[1]
    again = rr.score("ቡና", passages + ["አዲስ ምንባብ"])
    np.testing.assert_allclose(again[:3], first, rtol=1e-6)
    assert calls == [1]  # only the new passage was scored
    rr.score("ቡና", passages, max_length=64)
    assert calls == [1, 3]  # another max length is another score


def test_total_time_is_the_sum_of_the_stages(searcher):
    t = searcher.search("የቡና ምርት").timings_ms
    assert t["total"] == pytest.approx(sum(v for k, v in t.items() if k != "total" and v), abs=0.01)
