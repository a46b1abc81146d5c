"""Fields, filters, facets, sort, pagination and export (index/fields.py, search/filters.py)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from amharic_search.index.build import build_index
from amharic_search.index.calendar import parse_span
from amharic_search.index.fields import FieldError, FieldSet, FieldSpec, infer_type, parse_field_option
from amharic_search.search import Searcher
from amharic_search.search.filters import FilterError

from conftest import ENH, sample_docs

QUERIES = ["የቡና ምርት", "የወባ በሽታ", "ትምህርት ቤት", "የአድዋ ጦርነት", "ገበሬዎች", "የዝናብ ወቅት"]
FILTERS = [["ምንጭ=ጤና ለሁሉ"], ["ምንጭ=ጤና ለሁሉ,ምሥራቅ ዜና"], ["ምንጭ!=አዲስ ናሙና"], ["date>=2015"],
           ["date<2014"], ["date=2013"], ["date>=2013-05", "date<=2015-13"], ["date!=2016"], ["ዘርፍ=ግብርና", "date>2012"]]


def by_hand(doc: dict, filters: list[str]) -> bool:
    """Whether a sample document passes ``filters``, decided from its JSON (not from the index)."""
    for f in filters:
        for op in (">=", "<=", "!=", "=", ">", "<"):
            if op in f:
                name, value = f.split(op, 1)
                break
        if name == "date":
            raw = doc.get("ቀን") or ""
            if not raw:
                if op != "!=":
                    return False
                continue
            day = parse_span(raw, "ethiopian")[0]
            first, last = parse_span(value, "ethiopian")
            ok = {"=": first <= day <= last, "!=": not first <= day <= last, ">=": day >= first, ">": day > last,
                  "<=": day <= last, "<": day < first}[op]
        else:
            ok = (doc.get(name) in value.split(",")) == (op == "=")
        if not ok:
            return False
    return True


@pytest.fixture(scope="module")
def lexical(lexical_index):
    return Searcher.load(lexical_index, reranker=None, use_dense=False)


@pytest.fixture(scope="module")
def dense(sample_index, tiny_models):
    return Searcher.load(sample_index, reranker=None, dense_model=str(tiny_models["encoder"]))


def test_the_sample_fields_are_typed_and_in_the_manifest(lexical_index):
    manifest = json.loads((lexical_index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fields"]["ምንጭ"] == {"type": "keyword", "values": 5, "file": "001"}
    assert manifest["fields"]["ቀን"]["type"] == "date"
    assert manifest["fields"]["ቀን"]["calendar"] == "ethiopian"  # a date field named in Ethiopic
    fields = FieldSet.load(lexical_index)
    docs = sample_docs()
    for row in (0, 5, 77):
        shown = fields.display(row)
        assert shown["ምንጭ"] == docs[row]["ምንጭ"]
        assert shown.get("ቀን", "") == docs[row]["ቀን"]


def test_type_inference_and_overrides():
    assert infer_type("pages", [1, 2, 3.5]) == FieldSpec("number")
    assert infer_type("published", ["2023-09-12", "2024-02-29"]) == FieldSpec("date", "gregorian")
    assert infer_type("when", ["2015-13-06", "2015-01-01"]) == FieldSpec("date", "ethiopian")  # Pagume: Ethiopian only
    assert infer_type("date_ethiopian", ["1997-11-01"]) == FieldSpec("date", "ethiopian")
    assert infer_type("ቀን", ["2015-01-01"]) == FieldSpec("date", "ethiopian")
    assert infer_type("paper", ["ሪፖርተር"] * 5 + ["አዲስ፡አድማስ"] * 5) == FieldSpec("keyword")
    assert infer_type("note", [f"a long and different note {i}" for i in range(100)]) == FieldSpec("text")
    assert parse_field_option("date_ethiopian=date:ethiopian") == ("date_ethiopian", FieldSpec("date", "ethiopian"))
    for bad in ("source", "source=colour", "source=keyword:ethiopian", "text=keyword"):
        with pytest.raises(FieldError):
            parse_field_option(bad)


def test_a_field_name_is_never_a_path(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": f"d{i}", "text": "ቡና ምርት", "../../evil": "x", "a/b": i % 2})
                                for i in range(6)), encoding="utf-8")
    build_index(corpus, tmp_path / "idx" / "i", dense_model=None, show_progress=False)
    assert sorted(p.name for p in (tmp_path / "idx" / "i" / "fields").iterdir()) == [
        "000.npy", "000.values.json", "001.npy", "fields.json"]
    assert not (tmp_path / "evil.npy").exists()
    s = Searcher.load(tmp_path / "idx" / "i", reranker=None, use_dense=False)
    r = s.search("ቡና", stages="lexical", rerank=False, filters=["a/b>=1"])
    assert [x.doc_id for x in r.results] == ["d1", "d3", "d5"] and r.results[0].fields == {"../../evil": "x", "a/b": 1}


def test_a_bad_value_for_a_given_type_is_a_clear_error(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": f"d{i}", "text": "ቡና ምርት", "when": w}, ensure_ascii=False)
                                for i, w in enumerate(["2016-13-06", "2015-01-01"])), encoding="utf-8")
    with pytest.raises(FieldError, match="days 1 to 5"):
        build_index(corpus, tmp_path / "i", dense_model=None, show_progress=False,
                    fields={"when": FieldSpec("date", "ethiopian")})


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "&".join(f))
def test_lexical_filters_give_the_true_top_documents(lexical, filters):
    """The filtered search's documents and scores are those of scoring every document and keeping,
    by hand, those that pass: the best matching ones, not fewer because candidates were cut first."""
    docs = sample_docs()
    passing = np.array([by_hand(d, filters) for d in docs])
    bm25 = lexical.collection.bm25_docs
    for query in QUERIES:
        scores = bm25.scores(lexical.analyzer.tokens(query))
        expected = [i for i in np.lexsort((np.arange(len(docs)), -scores)) if passing[i] and scores[i] > 0][:5]
        r = lexical.search(query, top_k=5, stages="lexical", rerank=False, depth=5, candidates=5, filters=filters)
        assert [x.doc_id for x in r.results] == [docs[i]["id"] for i in expected]
        assert np.allclose([x.scores.bm25 for x in r.results], scores[expected], rtol=1e-6)
        assert all(by_hand(docs[[d["id"] for d in docs].index(x.doc_id)], filters) for x in r.results)


@pytest.mark.parametrize("filters", FILTERS[:5], ids=lambda f: "&".join(f))
def test_dense_filters_search_inside_faiss(dense, filters):
    """Dense: the nearest matching documents by brute force (every passage's cosine, best per document)."""
    docs = sample_docs()
    passing = np.array([by_hand(d, filters) for d in docs])
    coll = dense.collection
    vectors = coll.vectors.vectors()
    doc_of = coll.document_of(np.arange(coll.num_passages))
    for query in QUERIES[:3]:
        q = dense.first.encode(query)
        sims = vectors @ q
        best = np.full(len(docs), -np.inf)
        np.maximum.at(best, doc_of, sims)
        best[~passing] = -np.inf
        expected = [i for i in np.argsort(-best, kind="stable") if np.isfinite(best[i])][:4]
        r = dense.search(query, top_k=4, stages="dense", rerank=False, depth=4, candidates=4, filters=filters)
        assert [x.doc_id for x in r.results] == [docs[i]["id"] for i in expected]
        assert np.allclose([x.scores.dense for x in r.results], best[expected], atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_faiss_searches_only_allowed_rows(kind):
    """Both index kinds take the selector; IVF keeps its lists probed (the same answer as without a mask
    when every row is allowed), and returns only allowed rows, as many as asked while there are enough."""
    from amharic_search.index.dense import DenseIndex

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = DenseIndex.build(vectors, kind=kind)
    q = vectors[7]
    everything = np.ones(3000, dtype=bool)
    assert np.array_equal(index.search(q, 50, allow=everything)[0], index.search(q, 50)[0])
    allow = rng.random(3000) < 0.3
    rows, scores = index.search(q, 40, allow=allow)
    assert rows.size == 40 and allow[rows].all() and np.all(np.diff(scores) <= 1e-6)
    if kind == "flat":
        sims = vectors @ q
        sims[~allow] = -np.inf
        assert set(rows.tolist()) == set(np.argsort(-sims)[:40].tolist())
    few = np.zeros(3000, dtype=bool)
    few[[3, 99, 2500]] = True
    assert set(index.search(q, 10, allow=few)[0].tolist()) <= {3, 99, 2500}


def test_a_sharded_index_filters_as_one(lexical_index, lexical, tmp_path):
    from amharic_search.index.shard import split_index

    split_index(lexical_index, tmp_path / "s3", shards=3)
    sharded = Searcher.load(tmp_path / "s3", reranker=None, use_dense=False)
    for filters in FILTERS:
        for query in QUERIES[:3]:
            a = lexical.search(query, top_k=10, stages="lexical", rerank=False, filters=filters)
            b = sharded.search(query, top_k=10, stages="lexical", rerank=False, filters=filters)
            assert [(x.doc_id, x.fields) for x in a.results] == [(x.doc_id, x.fields) for x in b.results]
            assert a.facets == b.facets


def test_facets_count_the_retrieved_documents(lexical):
    docs = sample_docs()
    r = lexical.search("የቡና ምርት", top_k=3, stages="lexical", rerank=False, depth=40, filters=["date>=2013"])
    terms = lexical.analyzer.tokens("የቡና ምርት")
    scores = lexical.collection.bm25_docs.scores(terms)
    retrieved = [d for i, d in enumerate(docs) if scores[i] > 0 and by_hand(d, ["date>=2013"])]
    retrieved = sorted(retrieved, key=lambda d: -scores[docs.index(d)])[:40]
    counts: dict[str, int] = {}
    for d in retrieved:
        counts[d["ምንጭ"]] = counts.get(d["ምንጭ"], 0) + 1
    assert dict(map(tuple, r.facets["ምንጭ"])) == counts
    years = {int(d["ቀን"][:4]) for d in retrieved}
    assert [y for y, _ in r.facets["ቀን"]] == sorted(years)
    assert sum(n for _, n in r.facets["ቀን"]) == len(retrieved)


def test_sort_by_date_and_pages_are_stable(lexical):
    one = lexical.search("የኢትዮጵያ", top_k=12, stages="lexical", rerank=False, sort="date_desc")
    dates = [x.fields.get("ቀን", "") for x in one.results]
    dated = [d for d in dates if d]
    assert dated == sorted(dated, reverse=True) and dates[: len(dated)] == dated  # undated last
    pages = [lexical.search("የኢትዮጵያ", top_k=4, stages="lexical", rerank=False, sort="date_desc", offset=o)
             for o in (0, 4, 8)]
    assert [x.doc_id for p in pages for x in p.results] == [x.doc_id for x in one.results]
    assert [x.rank for p in pages for x in p.results] == list(range(1, 13))
    assert pages[1].offset == 4
    asc = lexical.search("የኢትዮጵያ", top_k=12, stages="lexical", rerank=False, sort="date_asc")
    asc_dates = [x.fields["ቀን"] for x in asc.results if "ቀን" in x.fields]
    assert asc_dates == sorted(asc_dates) and asc_dates[0] < dated[-1]  # the oldest of the candidates first


def test_bad_filters_are_value_errors_with_a_clear_message(lexical):
    cases = {"colour=red": "unknown field 'colour'", "ምንጭ>=a": "keyword field", "ምንጭ=nope": "no value 'nope'",
             "date>=19x5": "not a date", "date=2016-13-06": "days 1 to 5", "source": "write FIELD=VALUE"}
    for bad, message in cases.items():
        with pytest.raises(FilterError, match=message) as info:
            lexical.search("ቡና", stages="lexical", rerank=False, filters=[bad])
        assert isinstance(info.value, ValueError)


def test_blank_filters_are_no_filters(lexical):
    """An empty filter (an empty form field, ``filters=`` in a query string) applies nothing; the service's
    fuzzing found it answered 500 before."""
    plain = lexical.search("የቡና ምርት", stages="lexical", rerank=False)
    for blank in ([""], ["", "  "]):
        r = lexical.search("የቡና ምርት", stages="lexical", rerank=False, filters=blank)
        assert [(x.doc_id, x.scores.bm25) for x in r.results] == [(x.doc_id, x.scores.bm25) for x in plain.results]
    some = lexical.search("የቡና ምርት", stages="lexical", rerank=False, filters=["", "date>=2015"])
    assert some.results and all(x.fields["ቀን"] >= "2015" for x in some.results)


def test_cli_filter_format_and_errors(run, lexical_index):
    result = run("query", lexical_index, "የቡና ምርት", "--no-rerank", "--no-dense", "--filter", "ምንጭ=ጤና ለሁሉ,ምሥራቅ ዜና",
                 "--filter", "date>=2014", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {r["ምንጭ"] for r in rows} <= {"ጤና ለሁሉ", "ምሥራቅ ዜና"}
    assert all(r["ቀን"] >= "2014" for r in rows)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    as_json = json.loads(run("query", lexical_index, "የቡና ምርት", "--no-rerank", "--no-dense", "--format", "json",
                             "--sort", "date_asc", "--offset", "2", "-k", "3").output)
    assert as_json["offset"] == 2 and as_json["results"][0]["rank"] == 3 and "ምንጭ" in as_json["facets"]
    bad = run("query", lexical_index, "ቡና", "--no-rerank", "--no-dense", "--filter", "colour=red")
    assert bad.exit_code == 1 and "unknown field 'colour'" in bad.output and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_service_filters_in_the_body_and_the_query_string(lexical_index):
    from fastapi.testclient import TestClient

    from amharic_search.search.service import SearchService, ServiceConfig, create_app

    svc = SearchService(ServiceConfig(path=str(lexical_index), reranker=None, reload_interval=0, use_dense=False))
    try:
        with TestClient(create_app(svc)) as http:
            r = http.post("/v1/search", json={"query": "የቡና ምርት", "stages": "lexical", "rerank": False,
                                               "filters": ["ምንጭ=ጤና ለሁሉ"], "sort": "date_desc"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["results"] and {x["fields"]["ምንጭ"] for x in body["results"]} == {"ጤና ለሁሉ"}
            assert body["facets"]["ምንጭ"] == [["ጤና ለሁሉ", len(body["results"])]]
            g = http.get("/v1/search", params=[("query", "የቡና ምርት"), ("stages", "lexical"), ("rerank", "false"),
                                               ("filters", "date>=2015"), ("filters", "ምንጭ!=አዲስ ናሙና")])
            assert g.status_code == 200, g.text
            assert all(x["fields"]["ቀን"] >= "2015" and x["fields"]["ምንጭ"] != "አዲስ ናሙና"
                       for x in g.json()["results"])
            bad = http.post("/v1/search", json={"query": "ቡና", "filters": ["colour=red"]})
            assert bad.status_code == 400 and bad.json()["error"] == "bad_filter" and "colour" in bad.json()["message"]
            blank = http.get("/v1/search/stream", params=[("query", "ቡና"), ("filters", "")])
            assert blank.status_code == 200, blank.text
            stream = http.post("/v1/search/stream", json={"query": "ቡና", "filters": ["date>=19x5"]})
            assert stream.status_code == 400 and stream.json()["error"] == "bad_filter"
            assert http.post("/v1/search", json={"query": "ቡና", "sort": "oldest"}).status_code == 422
            assert http.post("/v1/search", json={"query": "ቡና", "offset": -1}).status_code == 422
    finally:
        svc.close()


def test_metadata_joins_enh_by_id(tmp_path, run):
    """enh's real metadata (newspaper, Ethiopian date) joined to 300 of its articles."""
    corpus = tmp_path / "enh300.jsonl"
    with open(ENH / "corpus.jsonl", encoding="utf-8") as f:
        corpus.write_text("".join(next(f) for _ in range(300)), encoding="utf-8")
    result = run("index", "build", corpus, "-o", tmp_path / "enh", "--no-dense", "--metadata", ENH / "metadata.jsonl")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "enh" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fields"]["source"]["type"] == "keyword"
    assert manifest["fields"]["date_ethiopian"] == {**manifest["fields"]["date_ethiopian"], "type": "date",
                                                    "calendar": "ethiopian"}
    meta = {}
    with open(ENH / "metadata.jsonl", encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            meta[m["id"]] = m
    searcher = Searcher.load(tmp_path / "enh", reranker=None, use_dense=False)
    r = searcher.search("መንግሥት", top_k=20, stages="lexical", rerank=False, filters=["date=1997"])
    assert r.results
    for x in r.results:
        assert x.fields["source"] == meta[x.doc_id]["source"]
        assert x.fields["date_ethiopian"] == meta[x.doc_id]["date_ethiopian"] and x.fields["date_ethiopian"][:4] == "1997"
    bad = run("index", "build", corpus, "-o", tmp_path / "x", "--no-dense", "--field", "colour=keyword")
    assert bad.exit_code == 1 and "colour" in bad.output


def test_unreadable_fields_are_one_clear_error(lexical_index, tmp_path, run):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(lexical_index, copy)
    (copy / "fields" / "fields.json").write_text('{"ምንጭ": {"type": "keyword"}}', encoding="utf-8")  # no "file"
    r = run("query", copy, "ቡና", "--no-dense", "--no-rerank", "--filter", "ምንጭ=ጤና ለሁሉ")
    assert r.exit_code == 1 and "fields/fields.json" in r.output and "rebuild" in r.output  # the manifest's sizes
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    from amharic_search.index.manifest import IndexFormatError

    with pytest.raises(IndexFormatError, match="its fields cannot be read.*rebuild"):
        FieldSet.load(copy)
