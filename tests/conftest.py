from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def shared_enh() -> Path:
    """The real enh collection (../shared/data/enh; $AMHARIC_SEARCH_DATA overrides ../shared/data), also
    from a clone elsewhere on this machine (CI clones into a temporary folder)."""
    import os

    for base in (os.environ.get("AMHARIC_SEARCH_DATA"), ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if base and (Path(base) / "enh" / "corpus.jsonl").is_file():
            return Path(base) / "enh"
    return ROOT.parent / "shared" / "data" / "enh"  # missing: the tests that read it say which file


ENH = shared_enh()
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Never reach for the hub from tests: a missing model must fail fast, not retry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sample_docs() -> list[dict]:
    with open(SAMPLE / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def run():
    """Invoke the command line (click's CliRunner) with these arguments; exceptions propagate."""
    from click.testing import CliRunner

    from amharic_search.search.cli import main

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny encoder and cross-encoder (random weights, tokenizer trained on the sample corpus)."""
    from tiny_models import build_cross_encoder, build_encoder, train_tokenizer

    root = tmp_path_factory.mktemp("models")
    tokenizer = train_tokenizer([d["title"] + "\n" + d["text"] for d in sample_docs()])
    return {
        "encoder": build_encoder(root / "encoder", tokenizer),
        "reranker": build_cross_encoder(root / "reranker", tokenizer),
        "reranker_spread": build_cross_encoder(root / "reranker_spread", tokenizer, init_range=0.5),
    }


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, tiny_models) -> Path:
    """The sample corpus indexed with the tiny encoder (all stages available)."""
    from amharic_search.index.build import build_index

    out = tmp_path_factory.mktemp("idx") / "sample"
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=str(tiny_models["encoder"]), show_progress=False)
    return out


@pytest.fixture(scope="session")
def lexical_index(tmp_path_factory) -> Path:
    from amharic_search.index.build import build_index

    out = tmp_path_factory.mktemp("idx") / "lexical"
    build_index(SAMPLE / "corpus.jsonl", out, dense_model=None, show_progress=False)
    return out


@pytest.fixture(scope="session")
def searcher(sample_index, tiny_models):
    from amharic_search.search import Searcher

    return Searcher.load(sample_index, reranker=str(tiny_models["reranker"]), reranker_backend="torch")


@pytest.fixture(scope="session")
def service_url(sample_index, tiny_models):
    """`amharic-search serve` on the sample index with the tiny models, as a real server on a free port."""
    import socket
    import subprocess
    import time

    from browser import stop

    from amharic_search.search.service.client import ServiceClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "amharic_search.search", "serve", str(sample_index), "--port", str(port), "--reranker",
           str(tiny_models["reranker"])]  # the page's defaults (reranker backend auto)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        client, deadline = ServiceClient(url, timeout=5), time.monotonic() + 120
        while not client.health():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the search service did not start"
            time.sleep(0.2)
        client.close()
        yield url
    finally:
        stop(proc)
