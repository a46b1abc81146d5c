"""Loading sentence-transformers models by hub id or local path, failing fast and clearly offline.

Both :class:`SentenceTransformer` and :class:`CrossEncoder` go through :func:`resolve_model`,
which never lets the hub client retry for a minute when the network is absent: a local
directory is used as is, a cached hub model is loaded from the cache without network, and an
uncached hub model is downloaded only if the hub answers within a few seconds.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_DENSE_MODEL = "rasyosef/embedding-amharic-medium"
DEFAULT_RERANKER = "rasyosef/reranker-amharic-medium"


class ModelUnavailableError(RuntimeError):
    """A model that cannot be loaded; the message says which and how to fix it."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(
            f"model {model!r} is not available: {reason}. "
            "Connect to the internet once and run `amharic-search models download` (it caches the models "
            "for offline use), or pass a local model directory (--dense-model/--reranker PATH), "
            "or run without that stage (--no-dense / --no-rerank)."
        )


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


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


def resolve_model(name: str) -> str:
    """A local directory holding the model, downloading it first if needed and possible."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if not _HUB_ID.match(name):
        raise ModelUnavailableError(name, f"no model directory at {path}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return snapshot_download(name, local_files_only=True)
    except HFValidationError as exc:
        raise ModelUnavailableError(name, f"not a hub model id or a local directory ({exc})") from None
    except Exception:  # not in the cache
        pass
    if not _hub_reachable():
        raise ModelUnavailableError(
            name, "it is not a local directory, not in the local cache, and the Hugging Face hub cannot be reached"
        )
    try:
        return snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*/*.json", "*/*.safetensors", "*.md"])
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear message
        raise ModelUnavailableError(name, f"download failed ({type(exc).__name__}: {exc})") from None


def _check_safetensors(directory: str, name: str) -> None:
    root = Path(directory)
    if not any(root.rglob("*.safetensors")):
        raise ModelUnavailableError(name, f"{root} has no .safetensors weights (pickled weights are never loaded)")


def _load(cls, name: str, **kwargs):
    directory = resolve_model(name)
    _check_safetensors(directory, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(directory, trust_remote_code=False, local_files_only=True,
                       model_kwargs={"use_safetensors": True}, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one clear message
        raise ModelUnavailableError(name, f"loading failed ({type(exc).__name__}: {exc})") from None


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
