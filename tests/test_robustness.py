"""Property-based and fuzz tests: random Unicode queries, malformed corpora, a 5 MB document."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amharic_search.index.build import build_index
from amharic_search.index.readers import CorpusError, read_corpus
from amharic_search.search import QueryError, Searcher

from conftest import SAMPLE


@pytest.fixture(scope="module")
def lexical_searcher(lexical_index):
    return Searcher.load(lexical_index, reranker=None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_query_path_never_crashes(lexical_searcher, text):
    try:
        r = lexical_searcher.search(text, stages="lexical", rerank=False)
    except QueryError:
        return
    assert all(x.scores.bm25 > 0 for x in r.results)
    assert len(r.results) <= 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_all_stages_survive_random_text(searcher, text):
    try:
        searcher.search(text, rerank=True, top_k=3, rerank_depth=5)
    except QueryError:
        pass


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
jsonl_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": st.text(max_size=5), "text": st.text(max_size=30)}, optional={"title": json_value}).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode()
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(jsonl_line, max_size=8), suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]), skip=st.booleans())
def test_readers_fuzz(tmp_path_factory, lines, suffix, skip):
    """Malformed input ends in documents or a CorpusError naming the file, never another exception."""
    path = tmp_path_factory.mktemp("fuzz") / f"corpus{suffix}"
    path.write_bytes(b"\n".join(lines))
    try:
        docs = list(read_corpus(path, skip_bad=skip))
    except CorpusError as exc:
        assert str(path) in str(exc)
        return
    assert docs and all(d.text.strip() and isinstance(d.id, str) for d in docs)
    assert len({d.id for d in docs}) == len(docs)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_folder_reader_fuzz(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("folder")
    (root / "a.txt").write_bytes(data)
    (root / "b.txt").write_text("ቡና", encoding="utf-8")
    try:
        docs = list(read_corpus(root, skip_bad=True))
    except CorpusError as exc:
        pytest.fail(f"skip_bad must not raise: {exc}")
    assert "b.txt" in [d.id for d in docs]


def test_single_5mb_document(tmp_path):
    sentence = "የኢትዮጵያ ቡና በዓለም ገበያ ተወዳጅ ነው። "
    text = sentence * (5 * 1024 * 1024 // len(sentence.encode()))
    corpus = tmp_path / "big.jsonl"
    corpus.write_text(json.dumps({"id": "big", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert corpus.stat().st_size > 5_000_000
    report = build_index(corpus, tmp_path / "idx", dense_model=None, show_progress=False)
    assert report.documents == 1 and report.passages > 1000
    r = Searcher.load(tmp_path / "idx", reranker=None).search("ቡና", rerank=False)
    assert [x.doc_id for x in r.results] == ["big"]


def test_sample_corpus_has_no_surprises():
    docs = list(read_corpus(SAMPLE / "corpus.jsonl"))
    assert len(docs) == 143
