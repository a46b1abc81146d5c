import json

import pytest

from conftest import SAMPLE


def test_index_build_and_info(run, tmp_path, tiny_models):
    out = tmp_path / "idx"
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", tiny_models["encoder"])
    assert r.exit_code == 0, r.output
    assert "Indexed 143 documents as" in r.output and "passages into" in r.output
    r = run("index", "info", out, "--verify")
    assert r.exit_code == 0
    width = len("format version")
    info = {line[:width].strip(): line[width:].strip() for line in r.stdout.splitlines()}
    assert info["documents"] == "143" and info["format version"] == "1"
    assert info["dense model"] == f"{tiny_models['encoder']} (32-d, exact)"
    assert info["checksums"].startswith("ok (")
    assert "32-d" in r.output and "amharic v1" in r.output and "checksums" in r.output
    r = run("index", "info", out, "--json")
    assert json.loads(r.stdout)["corpus"]["documents"] == 143


def test_index_build_precision_and_faiss_options(run, tmp_path, tiny_models):
    out = tmp_path / "idx"
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", tiny_models["encoder"],
            "--precision", "fp32", "--dense-index", "ivf")
    assert r.exit_code == 0, r.output
    dense = json.loads(run("index", "info", out, "--json").stdout)["dense"]
    assert dense["precision"] == "fp32" and dense["faiss"]["type"] == "ivf"
    assert "ivf" in run("index", "info", out).stdout
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", tiny_models["encoder"],
            "--precision", "fp16")
    assert r.exit_code != 0 and "fp16" in r.output


def test_query_window_and_backend_options(run, sample_index, tiny_models):
    args = ["query", sample_index, "የወባ በሽታ", "--json", "--reranker", tiny_models["reranker"], "--max-length", "32"]
    best = json.loads(run(*args, "--window", "best", "--reranker-backend", "torch").stdout)
    head = json.loads(run(*args, "--window", "head", "--reranker-backend", "torch").stdout)
    assert best["timings_ms"]["rerank"] is not None and head["timings_ms"]["rerank"] is not None
    # the same candidates, read differently: some rerank score changes
    assert [r["scores"]["rerank"] for r in best["results"]] != [r["scores"]["rerank"] for r in head["results"]]
    r = run(*args, "--reranker-backend", "gpu")
    assert r.exit_code != 0 and "gpu" in r.output


def test_index_build_lexical_only_and_bad_input(run, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "ቡና"}\n{broken\n{"id": "b", "text": "ሻይ"}\n', encoding="utf-8")
    r = run("index", "build", corpus, "--out", tmp_path / "x", "--no-dense")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: {corpus}, line 2: not valid JSON: expecting property name enclosed in double quotes at column 2 "
        "(use --skip-bad to skip such records)"
    )
    assert "Traceback" not in r.output
    r = run("index", "build", corpus, "--out", tmp_path / "x", "--no-dense", "--skip-bad")
    assert r.exit_code == 0
    assert r.stdout.strip().startswith("Indexed 2 documents as 2 passages into")
    assert r.stdout.strip().endswith("skipped 1 bad record (lexical only)")
    assert "skipped: " in r.stderr and "line 2" in r.stderr


def test_index_build_missing_model_is_clean(run, tmp_path):
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", tmp_path / "x", "--dense-model",
            "rasyosef/embedding-amharic-medium", "--strict")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: model 'rasyosef/embedding-amharic-medium' is not available")
    assert "Traceback" not in r.output and not (tmp_path / "x").exists()


def test_query_table_and_json(run, sample_index, tiny_models):
    r = run("query", sample_index, "የአድዋ ጦርነት", "--reranker", tiny_models["reranker"], "-k", "3")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["rank", "doc", "bm25", "dense", "fused", "rerank", "passage"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]
    assert lines[-1].startswith("time (ms): bm25")
    r = run("query", sample_index, "የአድዋ ጦርነት", "--json", "--no-rerank", "--no-dense", "-k", "2")
    d = json.loads(r.stdout)
    assert d["query"] == "የአድዋ ጦርነት" and len(d["results"]) == 2
    assert d["results"][0]["doc_id"] == "hist-001"
    assert d["timings_ms"]["rerank"] is None and d["results"][0]["scores"]["rerank"] is None
    assert d["timings_ms"]["dense"] is None and d["results"][0]["scores"]["dense"] is None


def test_query_errors_are_clean(run, lexical_index, tmp_path):
    r = run("query", lexical_index, "   ", "--no-rerank")
    assert r.exit_code == 1 and r.stderr.strip() == "Error: the query is empty: type a word or a question"
    r = run("query", tmp_path / "nope", "ቡና")
    assert r.exit_code == 1 and "no such index directory" in r.output
    r = run("query", lexical_index, "ቡና", "--strict")  # default reranker is not cached here
    assert r.exit_code == 1 and "reranker-amharic-medium" in r.output and "--no-rerank" in r.output


def test_eval_on_sample_judgments(run, lexical_index):
    r = run("eval", lexical_index, "--queries", SAMPLE / "queries.jsonl", "--qrels", SAMPLE / "qrels.tsv", "--no-rerank", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["queries"] == 37 and list(d["results"]) == ["lexical"]
    m = d["results"]["lexical"]
    assert set(m) == {"MRR@10", "nDCG@10", "Recall@10", "Recall@100", "MAP"}
    assert m["MRR@10"] > 0.8 and m["Recall@100"] > 0.9


def test_eval_all_modes_table(run, sample_index, tiny_models):
    r = run("eval", sample_index, "--queries", SAMPLE / "queries.jsonl", "--qrels", SAMPLE / "qrels.tsv",
            "--reranker", tiny_models["reranker"], "--limit", "5")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "5 judged queries"
    assert lines[1].split() == ["mode", "MRR@10", "nDCG@10", "Recall@10", "Recall@100", "MAP"]
    assert [line.split()[0] for line in lines[2:]] == ["lexical", "dense", "hybrid", "hybrid+rerank"]


def test_models_download_offline(run):
    r = run("models", "download")
    assert r.exit_code == 1
    assert "embedding-amharic-medium" in r.output and "Traceback" not in r.output
    assert "cannot be reached from this machine" in r.stderr and "Connect to the internet once" not in r.stderr


def test_app_help(run):
    r = run("app", "--help")
    assert r.exit_code == 0 and "--index" in r.output


def test_app_passes_the_page_its_options(run, monkeypatch):
    import os

    calls = []
    monkeypatch.setattr(os, "execv", lambda exe, args: calls.append(args))
    r = run("app", "--port", "8600", "--api", "http://127.0.0.1:8000", "--dense-model", "bundle/enc", "--reranker",
            "bundle/rr", "--server.headless", "true")
    assert r.exit_code == 0, r.output
    (args,) = calls
    assert args[args.index("--server.port") + 1] == "8600" and "--server.enableStaticServing" in args
    assert args[args.index("--server.headless") + 1] == "true"
    assert args[args.index("--") + 1:] == ["--api", "http://127.0.0.1:8000", "--dense-model", "bundle/enc",
                                           "--reranker", "bundle/rr"]


@pytest.mark.parametrize("query", ["።።።", "ቡና \x07 ☕", "x" * 10_000, "coffee"])
def test_query_odd_input(run, lexical_index, query):
    r = run("query", lexical_index, query, "--no-rerank", "--json")
    if r.exit_code == 0:
        assert "results" in json.loads(r.stdout)
    else:
        assert r.stderr.startswith("Error: ") and "Traceback" not in r.output


def test_tune_saves_the_best_fusion(run, tmp_path, tiny_models):
    from amharic_search.index.manifest import read_manifest
    from amharic_search.search import Searcher

    out = tmp_path / "idx"
    run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", tiny_models["encoder"])
    r = run("tune", out, "--queries", SAMPLE / "queries.jsonl", "--qrels", SAMPLE / "qrels.tsv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "37 judged queries"
    assert lines[1].split() == ["fusion", "MRR@10", "nDCG@10", "R@100"]
    assert any(line.startswith("lexical alone") for line in lines) and any(line.startswith("dense alone") for line in lines)
    from amharic_search.search.fusion import FusionConfig
    from amharic_search.search.tune import describe

    saved = read_manifest(out)["fusion"]
    assert lines[-1] == f"saved to {out}/manifest.json: {describe(FusionConfig.from_dict(saved))}"
    assert lines[2][:40].strip() == describe(FusionConfig.from_dict(saved))
    fused_mrr = [float(line[40:50]) for line in lines[2:12]]
    assert fused_mrr == sorted(fused_mrr, reverse=True)
    s = Searcher.load(out, reranker=None)
    assert s.fusion.to_dict() == saved
    assert s.search("ቡና", rerank=False).fusion == saved
    read_manifest(out, verify=True)  # files untouched


def test_python_dash_m_search():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "amharic_search.search", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for command in ("index", "query", "eval", "tune", "models", "app"):
        assert command in r.stdout
