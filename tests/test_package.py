"""The wheel: built from a copy of the tree, installed (not editable) into a fresh virtual
environment, then used from outside the repository: the CLI, and `amharic-search app`.

The new environment takes its dependencies from this one's site-packages (a .pth line, so this
environment's editable-install finder is not active there) and the code from the wheel only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from browser import free_port, stop
from conftest import ROOT

PACKAGED = ["amharic_search/search/webapp/app.py", "amharic_search/search/sample/corpus.jsonl",
            "amharic_search/search/sample/queries.jsonl", "amharic_search/search/sample/qrels.tsv",
            "amharic_search/search/sample/README.md", "amharic_search/index/stopwords_am.txt",
            "amharic_search/search/webapp/static/fonts/NotoSansEthiopic-ethiopic.woff2",
            "amharic_search/search/webapp/static/fonts/OFL.txt"]
NOT_COPIED = {".git", ".venv", "build", "dist", "indexes", ".cache", "__pycache__", ".pytest_cache"}


def run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def files_under(*dirs: Path) -> set[str]:
    return {str(p) for d in dirs for p in d.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("package")
    # Build from a copy, so no build/ folder in the repository (or its stale files) plays a part.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=lambda d, names: [n for n in names if n in NOT_COPIED or n.endswith(".egg-info")])
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp / "wheels"], env=pip_env)
    (wheel,) = (tmp / "wheels").glob("amharic_search-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # The wheel goes in before the .pth line: pip must not see (and replace) this environment's install.
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], env=pip_env)
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "_test_deps.pth").write_text("".join(f"{p}\n" for p in ours))

    work = tmp / "work"  # outside the repository
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AMHARIC_SEARCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_"))
           and k not in ("PYTHONPATH", "XDG_CACHE_HOME", "XDG_DATA_HOME")}
    env.update(HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "data"), XDG_CACHE_HOME=str(tmp / "cache"),
               HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    probe = ("import json; from amharic_search import search, index; import amharic_search.index.engines as e, "
             "amharic_search.search.ui.paths as p; print(json.dumps({'search': search.__file__, "
             "'index': index.__file__, 'checkout': str(p.checkout_root()), 'app': str(p.app_path()), "
             "'sample': str(p.sample_dir()), 'index_root': str(p.index_root()), 'cache': str(e.cache_dir())}))")
    where = {k: Path(v) for k, v in json.loads(run([python, "-c", probe], cwd=work, env=env).stdout).items()}
    packages = [site / "amharic_search" / "search", site / "amharic_search" / "index"]
    return {"names": names, "venv": venv, "site": site, "work": work, "env": env, "where": where,
            "exe": venv / "bin" / "amharic-search", "packages": packages, "before": files_under(*packages)}


def test_wheel_holds_the_page_and_the_sample_corpus(installed):
    names = installed["names"]
    assert set(PACKAGED) <= names
    assert not {n for n in names if "/" not in n}, "top-level modules in the wheel"
    assert not any(n.startswith(("tests/", "data/", "bench/", "docs/")) for n in names)


def test_installed_code_comes_from_the_wheel(installed):
    where, site, tmp = installed["where"], installed["site"], installed["venv"].parent
    assert where["search"].is_relative_to(site) and where["index"].is_relative_to(site)
    assert str(where["checkout"]) == "None"
    assert where["app"] == site / "amharic_search" / "search" / "webapp" / "app.py"
    assert where["sample"] == site / "amharic_search" / "search" / "sample"
    # the card's folder names are not installed at the top level, where another package's could clash
    assert not (site / "search").exists() and not (site / "index").exists()
    # the user's data and cache directories (platformdirs; on Linux $XDG_DATA_HOME, $XDG_CACHE_HOME)
    assert where["index_root"].is_relative_to(tmp) and where["index_root"].parts[-2:] == ("amharic-search", "indexes")
    assert where["cache"].is_relative_to(tmp) and where["cache"].name == "amharic-search"


def test_cli_builds_and_queries_outside_the_checkout(installed):
    exe, work, env = installed["exe"], installed["work"], installed["env"]
    corpus = installed["where"]["sample"] / "corpus.jsonl"
    run([exe, "index", "build", corpus, "--out", work / "idx", "--no-dense"], cwd=work, env=env)
    out = run([exe, "query", work / "idx", "ቡና", "--no-dense", "--no-rerank", "--json"], cwd=work, env=env).stdout
    assert json.loads(out)["results"]
    assert files_under(*installed["packages"]) == installed["before"]


def run_page_once(port: int, timeout: float) -> list:
    """Open one session on the server (as a browser tab does), wait until the script has run;
    returns the elements the page sent."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10,
                 max_size=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        ws.send(msg.SerializeToString())
        deadline, elements = time.time() + timeout, []
        while True:
            assert time.time() < deadline, "the page did not finish running in time"
            fwd = ForwardMsg()
            fwd.ParseFromString(ws.recv(timeout=max(1.0, deadline - time.time())))
            if fwd.WhichOneof("type") == "script_finished":
                return elements
            if fwd.WhichOneof("type") == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                elements.append(fwd.delta.new_element)


def test_app_serves_the_sample_index_from_the_user_data_dir(installed):
    exe, work, env = installed["exe"], installed["work"], installed["env"]
    port, log = free_port(), work / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "app", "--port", str(port), "--server.headless", "true",
                                 "--server.address", "127.0.0.1"], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            assert proc.poll() is None, "streamlit exited:\n" + log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read().decode() == "ok":
                        break
            except OSError:
                pass
            assert time.time() < deadline, "streamlit did not start in time"
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200
        font = f"http://127.0.0.1:{port}/app/static/fonts/NotoSansEthiopic-ethiopic.woff2"
        with urllib.request.urlopen(font, timeout=10) as r:  # the page's Ethiopic font, served from the package
            assert r.status == 200 and len(r.read()) > 100_000
        elements = run_page_once(port, timeout=max(10.0, deadline - time.time()))
    finally:
        stop(proc)
    assert not [e for e in elements if e.WhichOneof("type") == "exception"]
    assert any(e.WhichOneof("type") == "text_input" and e.text_input.label == "ፍለጋ" for e in elements)  # Amharic first
    # the sample index is built on the first page view, in the user's data directory
    assert (installed["where"]["index_root"] / "sample" / "manifest.json").is_file(), log.read_text(errors="replace")
    assert files_under(*installed["packages"]) == installed["before"]
