"""The command line offline: one policy for missing models, fail-fast checks, model identity,
offline bundles, transliterated queries. No test here reaches the hub (HF_HUB_OFFLINE=1)."""

import json
import re
import shutil

import pytest

from conftest import SAMPLE

QUERIES = ("--queries", SAMPLE / "queries.jsonl", "--qrels", SAMPLE / "qrels.tsv")
RERANKER_NOTE = "note: reranking skipped: model 'rasyosef/reranker-amharic-medium' is not available"


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load a model fails the test: checks must come first."""
    import amharic_search.index.build as index_build
    import amharic_search.index.models as index_models
    import amharic_search.search.rerank as search_rerank
    import amharic_search.search.loading as search_loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for module, name in [(index_models, "load_encoder"), (index_models, "load_cross_encoder"), (index_build, "load_encoder"),
                         (search_loading, "load_encoder"), (search_rerank, "load_cross_encoder")]:
        monkeypatch.setattr(module, name, refuse)


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("note: ")]


# -- one policy for missing models -------------------------------------------------------------------


def test_query_offline_skips_the_reranker_with_one_note(run, sample_index):
    r = run("query", sample_index, "የወባ በሽታ", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["results"] and d["stages"] == ["bm25", "dense"] and d["timings_ms"]["rerank"] is None
    (note,) = notes(r)  # one note, not one per stage of the search
    assert note.startswith(RERANKER_NOTE)
    assert "cannot reach the Hugging Face hub" in note and "models download --to DIR" in note and "--no-rerank" in note
    assert "Traceback" not in r.output
    assert any(w.startswith("reranking skipped: model 'rasyosef/reranker-amharic-medium'") for w in d["warnings"])


def test_strict_makes_a_missing_model_an_error(run, sample_index, tmp_path):
    r = run("query", sample_index, "የወባ በሽታ", "--strict")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: model 'rasyosef/reranker-amharic-medium' is not available")
    assert "--reranker DIR/reranker-amharic-medium" in r.stderr and "--no-rerank" in r.stderr
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", tmp_path / "x", "--strict")
    assert r.exit_code == 1 and "embedding-amharic-medium" in r.stderr and not (tmp_path / "x").exists()


def test_a_mistyped_local_path_says_so(run, sample_index, tmp_path):
    r = run("query", sample_index, "ቡና", "--dense-model", tmp_path / "no-such-model", "--no-rerank")
    assert r.exit_code == 0, r.output
    (note,) = notes(r)
    assert note.startswith(f"note: dense retrieval skipped: model '{tmp_path / 'no-such-model'}' is not available "
                           f"(there is no model directory at {tmp_path / 'no-such-model'}). Check the path")
    assert "models download" not in note and "internet" not in note
    assert r.stdout.splitlines()[1].split()[3] == "-"  # no dense score


def test_index_build_offline_builds_lexical_and_says_how_to_add_embeddings(run, tmp_path, tiny_models):
    out = tmp_path / "idx"
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out)
    assert r.exit_code == 0, r.output
    (note,) = notes(r)
    assert note.startswith("note: dense retrieval skipped: model 'rasyosef/embedding-amharic-medium' is not available")
    assert "lexical-only; to add the embeddings later, run the same build again with the encoder available" in note
    assert r.stdout.strip().endswith("(lexical only)")
    # the same build with an encoder adds the embeddings to the lexical index
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", tiny_models["encoder"])
    assert r.exit_code == 0, r.output
    assert "Changes since the previous index: 0 added, 0 edited, 0 deleted, 143 unchanged" in r.stdout
    assert json.loads(run("index", "info", out, "--json").stdout)["dense"]["dim"] == 32


def test_eval_offline_runs_what_it_can_and_lists_the_rest(run, sample_index):
    r = run("eval", sample_index, *QUERIES, "--limit", "5")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["lexical", "dense", "hybrid", "hybrid+rerank"]
    assert lines[-1].split(None, 1)[1] == "skipped  (no reranker)"
    header, first = lines[1].split()[1], lines[1].index(lines[1].split()[1])
    column_end = first + len(header)  # the skipped line stands in the table's columns: under the first figure
    assert re.search(r"\d\.\d{4}", lines[2]).end() == column_end == lines[-1].index("skipped") + len("skipped")
    assert RERANKER_NOTE in r.stderr and "note: skipped modes: hybrid+rerank (no reranker)" in r.stderr
    d = json.loads(run("eval", sample_index, *QUERIES, "--limit", "5", "--json").stdout)
    assert list(d["results"]) == ["lexical", "dense", "hybrid"] and d["skipped"] == {"hybrid+rerank": "no reranker"}
    r = run("eval", sample_index, *QUERIES, "--mode", "hybrid+rerank", "--strict")
    assert r.exit_code == 1 and "reranker-amharic-medium" in r.stderr


def test_quiet_has_no_notes(run, lexical_index):
    r = run("-q", "query", lexical_index, "ቡና")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.splitlines()[0].split()[0] == "rank"


def test_no_weight_loading_bars(run, sample_index, tiny_models):
    r = run("query", sample_index, "ቡና", "--reranker", tiny_models["reranker"], "--reranker-backend", "torch")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""


# -- fail fast ------------------------------------------------------------------------------------


def test_input_errors_come_before_any_model_loads(run, sample_index, tmp_path, no_model_loads):
    r = run("query", sample_index, " \t ")
    assert r.exit_code == 1 and r.stderr.strip() == "Error: the query is empty: type a word or a question"
    r = run("query", tmp_path / "nope", "ቡና")
    assert r.exit_code == 1 and "no such index directory" in r.stderr
    r = run("query", sample_index, "ቡና", "--dense-model", tmp_path / "typo", "--strict", "--no-rerank")
    assert r.exit_code == 1 and f"there is no model directory at {tmp_path / 'typo'}" in r.stderr
    r = run("query", sample_index, "ቡና", "--reranker", tmp_path / "typo", "--strict")
    assert r.exit_code == 1 and "Error: model" in r.stderr and "--reranker ID_OR_PATH" in r.stderr
    r = run("index", "build", tmp_path / "missing.jsonl", "--out", tmp_path / "x")
    assert r.exit_code == 1 and "missing.jsonl" in r.stderr and not notes(r)
    r = run("eval", sample_index, "--queries", tmp_path / "q.jsonl", "--qrels", SAMPLE / "qrels.tsv")
    assert r.exit_code == 2 and "q.jsonl" in r.stderr


# -- model identity -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_encoder(tmp_path_factory, tiny_models):
    """Another tiny encoder of the same dimension (32), different weights."""
    from tiny_models import build_encoder, train_tokenizer

    from conftest import sample_docs

    tok = train_tokenizer([d["title"] + "\n" + d["text"] for d in sample_docs()])
    return build_encoder(tmp_path_factory.mktemp("other") / "encoder", tok, seed=7)


def test_same_dimension_other_encoder_is_refused(run, sample_index, other_encoder, tiny_models):
    r = run("query", sample_index, "ቡና", "--dense-model", other_encoder, "--no-rerank")
    assert r.exit_code == 1
    assert f"the index was embedded with '{tiny_models['encoder']}'" in r.stderr
    assert f"the encoder '{other_encoder}' has fingerprint" in r.stderr and "--allow-other-encoder" in r.stderr
    r = run("query", sample_index, "ቡና", "--dense-model", other_encoder, "--no-rerank", "--allow-other-encoder", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["results"][0]["scores"]["dense"] is not None
    assert "used anyway (--allow-other-encoder)" in r.stderr


def test_a_moved_model_directory_still_matches(run, sample_index, tiny_models, tmp_path):
    moved = tmp_path / "elsewhere" / "my-encoder"
    shutil.copytree(tiny_models["encoder"], moved)
    r = run("query", sample_index, "ቡና", "--dense-model", moved, "--no-rerank", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["scores"]["dense"] is not None and r.stderr == ""


# -- offline bundle -------------------------------------------------------------------------------


def _fake_hub_cache(root, models: dict[str, str]):
    """A Hugging Face cache holding these models (hub id -> model directory), as a download leaves it."""
    for hub_id, directory in models.items():
        repo = root / ("models--" + hub_id.replace("/", "--"))
        shutil.copytree(directory, repo / "snapshots" / "0123abcd")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0123abcd")
        (repo / "snapshots" / "0123abcd" / "pytorch_model.bin").write_bytes(b"pickled weights are never copied")
    return root


def test_models_download_to_a_bundle_then_build_and_query_from_it(run, tmp_path, tiny_models, monkeypatch):
    import huggingface_hub.constants

    cache = _fake_hub_cache(tmp_path / "hub", {"rasyosef/embedding-amharic-medium": tiny_models["encoder"],
                                               "rasyosef/reranker-amharic-medium": tiny_models["reranker"]})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    r = run("models", "list")
    assert r.exit_code == 0 and r.stdout.count("available (cache: ") == 2

    bundle = tmp_path / "bundle"
    r = run("models", "download", "--to", bundle)
    assert r.exit_code == 0, r.output
    encoder, reranker = bundle / "embedding-amharic-medium", bundle / "reranker-amharic-medium"
    assert r.stdout.splitlines()[-1] == f"Use them by path: --dense-model {encoder} --reranker {reranker}"
    assert not any(p.is_symlink() for p in bundle.rglob("*")) and not list(bundle.rglob("*.bin"))
    assert (encoder / "model.safetensors").is_file() and (reranker / "model.safetensors").is_file()

    # the bundle on a machine with no cache at all
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    r = run("models", "list", "--dir", bundle)
    assert r.stdout.count("not available (not in this machine's cache)") == 2
    assert r.stdout.count("available (local folder: ") == 2
    out = tmp_path / "idx"
    r = run("index", "build", SAMPLE / "corpus.jsonl", "--out", out, "--dense-model", encoder)
    assert r.exit_code == 0 and "(lexical only)" not in r.stdout
    r = run("query", out, "የወባ በሽታ", "--reranker", reranker, "--json", "--strict")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stages"] == ["bm25", "dense", "rerank"] and r.stderr == ""


def test_an_index_built_from_the_cache_accepts_the_bundle_copy(run, tmp_path, tiny_models, monkeypatch):
    import huggingface_hub.constants

    cache = _fake_hub_cache(tmp_path / "hub", {"rasyosef/embedding-amharic-medium": tiny_models["encoder"]})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    out = tmp_path / "idx"
    assert run("index", "build", SAMPLE / "corpus.jsonl", "--out", out).exit_code == 0
    assert run("models", "download", "--to", tmp_path / "b", "--reranker", tiny_models["reranker"]).exit_code == 0
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    r = run("query", out, "ቡና", "--no-rerank")
    assert r.exit_code == 0 and "dense retrieval skipped" in r.stderr  # the cache is gone
    r = run("query", out, "ቡና", "--no-rerank", "--json", "--dense-model", tmp_path / "b" / "embedding-amharic-medium")
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout)["stages"] == ["bm25", "dense"]


def test_models_download_offline_names_the_bundle_alternative(run, tmp_path):
    r = run("models", "download", "--to", tmp_path / "b")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert ("rasyosef/embedding-amharic-medium and rasyosef/reranker-amharic-medium: the Hugging Face hub cannot be "
            "reached from this machine") in r.stderr
    assert "on a machine with internet" in r.stderr and "--to DIR" in r.stderr
    assert not (tmp_path / "b" / "embedding-amharic-medium").exists()


# -- input conveniences ---------------------------------------------------------------------------


def test_query_transliteration(run, lexical_index):
    r = run("query", lexical_index, "buna", "--no-rerank", "--json")
    d = json.loads(r.stdout)
    assert d["query"] == "ቡና" and d["results"]
    assert "note: searching for 'ቡና' (Latin typing converted" in r.stderr
    d = json.loads(run("query", lexical_index, "buna", "--no-rerank", "--json", "--translit", "off").stdout)
    assert d["query"] == "buna" and not d["results"]
    d = json.loads(run("query", lexical_index, "ቡና buna", "--no-rerank", "--json").stdout)
    assert d["query"] == "ቡና buna"  # auto: a query with Ethiopic letters is left as typed
    d = json.loads(run("query", lexical_index, "ቡና buna", "--no-rerank", "--json", "--translit", "on").stdout)
    assert d["query"] == "ቡና ቡና"
    r = run("query", lexical_index, "xyzqwv blorf", "--no-rerank", "--json")  # Latin, but not Amharic typed in it
    assert json.loads(r.stdout)["query"] == "xyzqwv blorf" and "searching for" not in r.stderr


def test_the_fix_it_command_names_absolute_paths(run, tmp_path, monkeypatch):
    """An index built with relative paths, searched from elsewhere (a server started in another folder):
    the note's command names the corpus and the index where they are."""
    from amharic_search.search import Searcher

    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLE / "corpus.jsonl", "corpus.jsonl")
    assert run("index", "build", "corpus.jsonl", "--out", "idx", "--no-dense").exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    searcher = Searcher.load(tmp_path / "idx", reranker=None)
    (note,) = [w for w in searcher.warnings if w.startswith("dense retrieval skipped")]
    assert f"`amharic-search index build {tmp_path / 'corpus.jsonl'} --out {tmp_path / 'idx'} --dense-model MODEL`" in note


# -- interrupted builds ---------------------------------------------------------------------------


def test_ctrl_c_says_what_was_kept_and_the_rerun_resumes(run, tmp_path, tiny_models, monkeypatch):
    from amharic_search.index import build as build_mod

    real, calls = build_mod.encode, []

    def encode(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of the embedding
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "encode", encode)
    args = ("index", "build", SAMPLE / "corpus.jsonl", "--out", tmp_path / "idx", "--dense-model", tiny_models["encoder"],
            "--batch-size", "4")
    r = run(*args)
    assert r.exit_code == 130 and "Traceback" not in r.output
    (line,) = r.stderr.splitlines()
    assert line.startswith("Interrupted: 32 of 169 passage embeddings kept in ")
    assert line.endswith("; run the same command again to resume")
    assert not (tmp_path / "idx").exists()
    monkeypatch.setattr(build_mod, "encode", real)
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Embedded 137 passages, reused 0 from the previous index, resumed 32 from an interrupted build" in r.stdout
