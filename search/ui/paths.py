"""Where things are: the Streamlit page, the sample corpus, and where indexes and caches go.

From a source checkout (an editable install included) the repository's own files are used:
``app.py``, ``data/sample/`` and ``indexes/``. From an installed wheel the copies packaged in
``search`` (``search/webapp/app.py``, ``search/sample/``) are read, never written: indexes go
to the user's data directory and caches to the user's cache directory (platformdirs).

    AMHARIC_SEARCH_INDEX_ROOT   where indexes (the sample index, uploads) go
    AMHARIC_SEARCH_CACHE        where caches (exported ONNX graphs) go (index.engines.cache_dir)
    AMHARIC_SEARCH_READ_ONLY    1: the page offers visitors no writes (``amharic-search app --read-only``)
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

APP_NAME = "amharic-search"
INDEX_ROOT_ENV = "AMHARIC_SEARCH_INDEX_ROOT"
READ_ONLY_ENV = "AMHARIC_SEARCH_READ_ONLY"


def read_only_env() -> bool:
    """Whether $AMHARIC_SEARCH_READ_ONLY asks for a read-only page (1, true, yes, on)."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def checkout_root() -> Path | None:
    """The repository root when this code runs from a source checkout, else None (installed)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "app.py").is_file() and (root / "data" / "sample").is_dir():
        return root
    return None


def _packaged(*parts: str) -> Path:
    """A file packaged in ``search`` (read only); installs are on disk, so it is a real path."""
    resource = files(__name__.rsplit(".", 2)[0])  # the search package, under its installed name
    for part in parts:
        resource = resource / part
    return Path(str(resource))


def app_path() -> Path:
    """The Streamlit page: the checkout's app.py, else the packaged copy."""
    root = checkout_root()
    return root / "app.py" if root else _packaged("webapp", "app.py")


def sample_dir() -> Path:
    """The sample corpus, queries and qrels: the checkout's data/sample, else the packaged copy."""
    root = checkout_root()
    return root / "data" / "sample" if root else _packaged("sample")


def default_index_root() -> Path:
    """Where indexes go unless $AMHARIC_SEARCH_INDEX_ROOT says otherwise."""
    root = checkout_root()
    if root:
        return root / "indexes"
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)) / "indexes"


def index_root() -> Path:
    """$AMHARIC_SEARCH_INDEX_ROOT, else :func:`default_index_root`."""
    return Path(os.environ.get(INDEX_ROOT_ENV) or default_index_root())


def models_dir(index_root: str | Path) -> Path:
    """Where the page tells a server's administrator to put a bundle of models: beside its indexes
    (``models/`` in a checkout, the data directory when installed), as an absolute path."""
    return Path(index_root).expanduser().resolve().parent / "models"
