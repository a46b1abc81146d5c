"""Loading sentence-transformers models by hub id or local path, failing fast and clearly offline.

Both :class:`SentenceTransformer` and :class:`CrossEncoder` go through :func:`resolve_model`,
which never lets the hub client retry for a minute when the network is absent: a local
directory is used as is, a cached hub model is loaded from the cache without network, and an
uncached hub model is downloaded only if the hub answers within a few seconds.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

DEFAULT_DENSE_MODEL = "rasyosef/embedding-amharic-medium"
DEFAULT_RERANKER = "rasyosef/reranker-amharic-medium"


Stage = Literal["dense", "rerank"]
STAGES: dict[str, dict[str, str]] = {
    "dense": {"title": "dense retrieval", "option": "--dense-model", "skip": "--no-dense", "default": DEFAULT_DENSE_MODEL},
    "rerank": {"title": "reranking", "option": "--reranker", "skip": "--no-rerank", "default": DEFAULT_RERANKER},
}
"""The stages that need a model: what they are called and the command-line options that choose them."""

Cause = Literal["missing-path", "offline", "not-found", "no-safetensors", "failed"]


class ModelUnavailableError(RuntimeError):
    """A model that cannot be loaded; the message says which, why, and how to get it.

    ``cause`` tells the kinds apart: ``missing-path`` (a local directory that does not exist),
    ``offline`` (not cached and the hub cannot be reached), ``not-found``, ``no-safetensors``,
    ``failed`` (download or loading failed). :meth:`note` is the one-line note of the
    missing-model policy: the stage is skipped (an error only in strict mode).
    """

    def __init__(self, model: str, reason: str, *, cause: Cause = "failed", stage: Stage | None = None) -> None:
        self.model = model
        self.reason = reason
        self.cause = cause
        self.stage = stage
        """The stage that needs the model, when known (the advice then names its options)."""
        super().__init__(model, reason)

    def __str__(self) -> str:
        return f"model {self.model!r} is not available: {self.reason}. {self.advice(self.stage, error=True)}"

    def advice(self, stage: Stage | None = None, *, error: bool = False) -> str:
        """How to get the model (for ``stage``: also how to leave the stage out, after a note or an error)."""
        option = STAGES[stage]["option"] if stage else "--dense-model/--reranker"
        if self.cause == "missing-path":
            fix = f"Check the path, or pass another model directory or hub id ({option} ID_OR_PATH)."
        elif self.cause == "offline":
            fix = (f"This machine cannot reach the Hugging Face hub. On a machine with internet run "
                   f"`amharic-search models download --to DIR`, copy DIR here and pass the model's folder "
                   f"({option} DIR/{self.model.rstrip('/').split('/')[-1]}).")
        else:
            fix = f"Pass another model directory or hub id ({option} ID_OR_PATH)."
        if stage and error:
            fix += f" Or pass {STAGES[stage]['skip']} to leave {STAGES[stage]['title']} out."
        elif stage:
            fix += f" {STAGES[stage]['skip']} leaves {STAGES[stage]['title']} out without this note."
        return fix

    def note(self, stage: Stage) -> str:
        """The one note a skipped stage gets: which stage, which model, why, how to get it."""
        return (f"{STAGES[stage]['title']} skipped: model {self.model!r} is not available ({self.reason}). "
                f"{self.advice(stage)}")


def skipped_note(notes: list[str], stage: Stage) -> str | None:
    """Of a searcher's notes, the one that says ``stage`` was skipped (None if it was not)."""
    prefix = f"{STAGES[stage]['title']} skipped:"
    return next((n for n in notes if n.startswith(prefix)), None)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*/*.json", "*/*.safetensors", "*.md"]
"""What a model download fetches: configuration, safetensors weights, tokenizer files, model card."""


def looks_like_path(name: str) -> bool:
    """A name that can only be a local path (not a hub id): absolute, ``./``, ``~``, or with 2+ slashes."""
    return name.startswith((".", "/", "~", "\\")) or os.sep in name.strip("/").replace("/", "", 1) or not _HUB_ID.match(name)


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_model(name: str) -> str | None:
    """The local directory of ``name`` without any network: the directory itself, or its hub cache snapshot."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if looks_like_path(name):
        return None
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache (or not a valid id)
        return None


def resolve_model(name: str) -> str:
    """A local directory holding the model, downloading it first if needed and possible.

    Fails at once (no hub retries) with a :class:`ModelUnavailableError` whose message fits the cause.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if looks_like_path(name):
        raise ModelUnavailableError(name, f"there is no model directory at {path.resolve()}", cause="missing-path")
    found = cached_model(name)
    if found:
        return found
    if not _hub_reachable():
        raise ModelUnavailableError(
            name, f"no local directory {name!r} and not in this machine's model cache", cause="offline"
        )
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, allow_patterns=ALLOW_PATTERNS)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear message
        cause: Cause = "not-found" if "404" in str(exc) or "RepositoryNotFound" in type(exc).__name__ else "failed"
        raise ModelUnavailableError(name, f"download failed ({type(exc).__name__}: {exc})", cause=cause) from None


def download_model(name: str, to: str | Path) -> Path:
    """Write a self-contained copy of ``name`` (safetensors weights only) into ``to``/<model name>.

    The copy comes from the local cache or a local directory when the model is there, else from the
    hub. The folder is used by path on any machine (``--dense-model DIR/embedding-amharic-medium``).

    Example::

        download_model("rasyosef/reranker-amharic-medium", "bundle")  # bundle/reranker-amharic-medium
    """
    source = Path(resolve_model(name))
    _check_safetensors(str(source), name)
    dest = Path(to).expanduser() / name.rstrip("/").split("/")[-1]
    if dest.resolve() == source.resolve():
        return dest
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for file in sorted(source.rglob("*")):
        rel = file.relative_to(source)
        if not file.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if not any(fnmatch.fnmatch(rel.as_posix(), pattern) for pattern in ALLOW_PATTERNS):
            continue  # pickled weights, ONNX/OpenVINO exports, code: never copied
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, tmp / rel)  # follows the hub cache's symlinks: real files
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def _check_safetensors(directory: str, name: str) -> None:
    root = Path(directory)
    if not any(root.rglob("*.safetensors")):
        raise ModelUnavailableError(name, f"{root} has no .safetensors weights (pickled weights are never loaded)",
                                    cause="no-safetensors")


def _load(cls, name: str, **kwargs):
    directory = resolve_model(name)
    _check_safetensors(directory, name)
    try:
        with warnings.catch_warnings(), quiet_libraries():
            warnings.simplefilter("ignore")
            return cls(directory, trust_remote_code=False, local_files_only=True,
                       model_kwargs={"use_safetensors": True}, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one clear message
        raise ModelUnavailableError(name, f"loading failed ({type(exc).__name__}: {exc})") from None


VERBOSE = os.environ.get("AMHARIC_SEARCH_VERBOSE", "") not in ("", "0")
"""Show the model libraries' own progress bars and warnings (the CLI's ``-v`` sets it)."""


@contextlib.contextmanager
def quiet_libraries():
    """No "Loading weights" bars or library warnings from transformers / sentence-transformers
    while models load, unless :data:`VERBOSE`."""
    if VERBOSE:
        yield
        return
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)
        st_logger.setLevel(st_level)


def load_encoder(name: str, *, device: str | None = None):
    """A SentenceTransformer from a hub id or local path (no remote code, safetensors only).

    Example::

        model = load_encoder("rasyosef/embedding-amharic-medium")
    """
    from sentence_transformers import SentenceTransformer

    return _load(SentenceTransformer, name, device=device)


def load_cross_encoder(name: str, *, max_length: int | None = None, device: str | None = None):
    """A sentence-transformers CrossEncoder from a hub id or local path (same safeguards)."""
    from sentence_transformers import CrossEncoder

    return _load(CrossEncoder, name, max_length=max_length, device=device)


def model_revision(directory: str) -> str | None:
    """The hub commit of a cached snapshot (its folder name), or None for a plain local directory."""
    parts = Path(directory).parts
    if len(parts) >= 2 and parts[-2] == "snapshots":
        return parts[-1]
    return None


def weights_fingerprint(model_dir: str | Path) -> str:
    """SHA-256 of the model's weight files (relative path and bytes): a changed model never reuses old vectors.
    Hashed once per process while the files keep their sizes and times (documents added one batch at a
    time embed with the same model again and again)."""
    root = Path(model_dir)
    files = sorted(root.rglob("*.safetensors"))
    return _weights_fingerprint(str(root), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=16)
def _weights_fingerprint(root_name: str, stats: tuple) -> str:
    h = hashlib.sha256()
    root = Path(root_name)
    for path in (Path(name) for name, _, _ in stats):
        h.update(path.relative_to(root).as_posix().encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _settings(root: Path) -> dict:
    """What, besides the weights, decides a sentence-transformers encoder's vectors: its modules
    (pooling, normalization, dense layers) and their settings, max length, prompts, tokenizer files."""
    st = _json(root / "config_sentence_transformers.json")
    modules = _json(root / "modules.json") if (root / "modules.json").is_file() else []
    settings: dict = {
        "prompts": st.get("prompts") or {},
        "default_prompt_name": st.get("default_prompt_name"),
        "sentence_bert_config": _json(root / "sentence_bert_config.json"),
        "modules": [],
    }
    for module in modules if isinstance(modules, list) else []:
        entry = {"type": module.get("type"), "path": module.get("path")}
        sub = root / str(module.get("path") or "")
        if module.get("path") and (sub / "config.json").is_file():
            entry["config"] = _json(sub / "config.json")
        settings["modules"].append(entry)
    tokenizer = hashlib.sha256()
    for name in ("tokenizer.json", "sentencepiece.bpe.model", "vocab.txt", "spm.model"):
        if (root / name).is_file():
            tokenizer.update(name.encode())
            tokenizer.update((root / name).read_bytes())
    settings["tokenizer"] = tokenizer.hexdigest()
    return settings


def model_fingerprint(model_dir: str | Path) -> str:
    """What identifies a model wherever its directory lies: SHA-256 of its weights, tokenizer,
    modules (pooling, normalization) and prompt settings. Paths and names do not count, so a
    moved or copied directory (an offline bundle, a hub cache snapshot) has the same fingerprint.

    Example::

        model_fingerprint(resolve_model("rasyosef/embedding-amharic-medium"))  # 'sha256:3f1c…'
    """
    root = Path(model_dir).resolve()
    stats = tuple((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in sorted(root.rglob("*")) if p.is_file() and ".cache" not in p.parts)
    return _fingerprint(str(root), stats)


@lru_cache(maxsize=16)
def _fingerprint(root: str, stats: tuple) -> str:  # keyed by the files' sizes and times: hashed once per process
    blob = json.dumps(_settings(Path(root)), sort_keys=True, default=str)
    h = hashlib.sha256(blob.encode())
    h.update(weights_fingerprint(root).encode())
    return "sha256:" + h.hexdigest()
