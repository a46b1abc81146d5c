import pytest

from amharic_search.search.evaluate import EvalInputError, evaluate, load_qrels, load_queries


def test_metrics_by_hand():
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 1.0}}
    qrels = {"q1": {"b": 1}, "q2": {"y": 1}}
    m = evaluate(run, qrels)
    assert m["MRR@10"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["Recall@10"] == pytest.approx(0.5)
    assert m["MAP"] == pytest.approx(0.25)


def test_query_without_results_counts_zero():
    assert evaluate({}, {"q": {"d": 1}})["MRR@10"] == 0.0


def test_qrels_formats(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_text("query_id\tdoc_id\trelevance\nq1\td1\t1\nq1\td2\t0\n")
    assert load_qrels(f) == {"q1": {"d1": 1, "d2": 0}}
    f.write_text("q1 0 d1 2\n")
    assert load_qrels(f) == {"q1": {"d1": 2}}
    f.write_text("q1\td1\t1\nq2\td2\tyes\n")
    with pytest.raises(EvalInputError, match="line 2: relevance 'yes' is not an integer"):
        load_qrels(f)


def test_queries_file(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"id": 1, "text": "ቡና"}\n\n{"id": "2", "text": "ሻይ"}\n', encoding="utf-8")
    assert load_queries(f) == {"1": "ቡና", "2": "ሻይ"}
    f.write_text('{"id": 1}\n')
    with pytest.raises(EvalInputError, match="line 1"):
        load_queries(f)
