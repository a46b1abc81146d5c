import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from amharic_search.index.analyzer import Analyzer
from amharic_search.index.bm25 import BM25Index, BM25Params

from conftest import sample_docs


@pytest.fixture(scope="module")
def corpus_terms():
    a = Analyzer()
    return [a.tokens(d["title"] + "\n" + d["text"]) for d in sample_docs()]


def test_parity_with_rank_bm25(corpus_terms):
    """bm25s 'robertson' equals rank_bm25.BM25Okapi on terms whose idf is positive.

    bm25s leaves out the constant factor (k1 + 1) of the term-frequency part (it changes no
    ranking), so the scores agree once it is put back, and the rankings agree as they are.
    """
    params = BM25Params(k1=1.5, b=0.75, method="robertson")
    ours = BM25Index.build(corpus_terms, params=params)
    ref = BM25Okapi(corpus_terms, k1=1.5, b=0.75)
    n = len(corpus_terms)
    queries = [Analyzer().tokens(q) for q in ["የቡና ምርት", "የወባ በሽታ መከላከል", "አጼ ቴዎድሮስ መቅደላ", "የኢንተርኔት ማጭበርበር"]]
    checked = 0
    for q in queries:
        q = [t for t in q if t in ref.idf and sum(t in doc for doc in corpus_terms) < n / 2]
        assert q
        np.testing.assert_allclose(ours.scores(q) * (params.k1 + 1), ref.get_scores(q), rtol=1e-5, atol=1e-5)
        ref_scores = ref.get_scores(q)
        ref_top = [i for i in np.argsort(-ref_scores, kind="stable")[:10] if ref_scores[i] > 0]
        assert list(ours.top_k(q, 10)[0]) == ref_top
        checked += 1
    assert checked == len(queries)


def test_top_k_order_and_unknown_terms(corpus_terms):
    bm25 = BM25Index.build(corpus_terms)
    rows, scores = bm25.top_k(["ቡና"], 5)
    assert len(rows) == 5 and np.all(np.diff(scores) <= 0) and np.all(scores > 0)
    full = bm25.scores(["ቡና"])
    assert rows[0] == int(np.argmax(full))
    rows, scores = bm25.top_k(["ፍጹምያልታወቀቃል"], 10)
    assert rows.size == 0
    assert bm25.known_terms(["ቡና", "ፍጹምያልታወቀቃል"]) == ["ቡና"]


def test_save_load_round_trip_with_amharic(tmp_path, corpus_terms):
    bm25 = BM25Index.build(corpus_terms, params=BM25Params(k1=0.9, b=0.6))
    bm25.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert loaded.params == BM25Params(k1=0.9, b=0.6)
    for q in (["ቡና", "ኢትዮጵያ"], ["መንግስት"], ["$ስድ"]):
        np.testing.assert_allclose(loaded.scores(q), bm25.scores(q))


@pytest.mark.parametrize("method", ["lucene", "robertson", "bm25+", "bm25l"])
def test_scores_of_rows_equal_the_full_scores(tmp_path, corpus_terms, method):
    bm25 = BM25Index.build(corpus_terms, params=BM25Params(method=method))
    bm25.save(tmp_path)
    loaded = BM25Index.load(tmp_path)  # memory-mapped postings, as at search time
    rows = np.array([0, 3, 2, len(corpus_terms) - 1, 3, 7])  # any order, repeats allowed
    for q in (["ቡና", "ምርት", "ቡና"], ["ኢትዮጵያ"], ["ፍጹምያልታወቀቃል"], []):
        for index in (bm25, loaded):
            np.testing.assert_allclose(index.scores_of(q, rows), index.scores(q)[rows], rtol=1e-6, atol=1e-6)
    assert loaded.scores_of(["ቡና"], np.array([], dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_slice_keeps_the_whole_collections_scores(tmp_path, corpus_terms, method):
    """A shard's rows score as in the whole index (collection-wide idf and average length), after a save/load."""
    whole = BM25Index.build(corpus_terms, params=BM25Params(method=method))
    part = whole.slice(40, 90)
    part.save(tmp_path)
    part = BM25Index.load(tmp_path)
    assert part.num_docs == 50
    queries = [corpus_terms[i][:3] for i in (0, 45, 60, 100)] + [["ቡና", "ምርት"], ["no-such-term"]]
    for q in queries:
        assert np.array_equal(part.scores(q), whole.scores(q)[40:90])
        assert np.array_equal(part.scores_of(q, np.arange(5, 20)), whole.scores(q)[45:60])
    if method == "lucene":  # terms absent from the rows are dropped; bm25+ scores absence, so keeps them all
        assert part.vocab_size < whole.vocab_size
    else:
        assert part.vocab_size == whole.vocab_size
