"""Build time of amharic-search: read a corpus, analyze, chunk, embed and persist an index."""

__version__ = "0.1.0"

from .analyzer import Analyzer, AnalyzerConfig  # noqa: E402
from .build import build_index  # noqa: E402

__all__ = ["Analyzer", "AnalyzerConfig", "build_index", "__version__"]
