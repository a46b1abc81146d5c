"""The house rules of docs/ARCHITECTURE.md, checked: no import circles (imports inside functions
count), index/ never imports search/, the library's top level imports none of search's subpackages,
and the things defined once stay defined once (options, response schema)."""

from __future__ import annotations

import ast
import dataclasses
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("index", "search")
SUBPACKAGES = ("search.service", "search.train", "search.ui")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            out[".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = f
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()

    def targets(cur: str, node) -> set[str]:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = cur.split(".")
                keep = len(parts) - node.level + (1 if mods[cur].name == "__init__.py" else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        found = set()
        for n in names:
            while n and n not in mods:
                n = n.rpartition(".")[0]
            if n and n != cur:
                found.add(n)
        return found

    graph = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m] |= targets(m, node)
    # a package's __init__ is its face: edges between it and its own modules are not circles
    return {m: {t for t in ts if not t.startswith(m + ".") and not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_import_circles():
    graph = import_graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_the_floors_import_downwards_only():
    graph = import_graph()
    up = [f"{m} -> {t}" for m, ts in graph.items() for t in ts if m.startswith("index") and t.startswith("search")]
    assert up == []
    library = [m for m in graph if m.startswith("search") and not m.startswith(SUBPACKAGES) and m != "search.cli"]
    into_rooms = [f"{m} -> {t}" for m in library for t in graph[m] if t.startswith(SUBPACKAGES)]
    assert into_rooms == []


def test_a_cycle_would_be_found():
    """The check itself can fail: a graph with a circle raises."""
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())


def test_the_service_request_is_generated_from_the_search_options():
    from amharic_search.search.adaptive import AdaptiveDepth
    from amharic_search.search.options import SearchOptions
    from amharic_search.search.service.app import SearchParams

    offered = {f.name: f for f in dataclasses.fields(SearchOptions) if f.metadata.get("api", True)}
    fields = SearchParams.model_fields
    assert set(offered) <= set(fields)
    for name, f in offered.items():
        assert fields[name].description == f.metadata["doc"]
        if name != "adaptive":
            assert fields[name].default == f.default
    assert "weights" not in fields  # library-only options stay out of the API
    assert SearchParams(query="x", top_k=3, adaptive=True).options() == SearchOptions(top_k=3, adaptive=AdaptiveDepth())


def test_the_service_response_models_match_the_response_schema():
    from amharic_search.search.schema import SearchResponse, SearchResult, StageValues
    from amharic_search.search.service.app import SearchResponseModel, SearchResultModel, StageValuesModel

    assert set(StageValuesModel.model_fields) == {f.name for f in dataclasses.fields(StageValues)}
    assert set(SearchResultModel.model_fields) == set(SearchResult(0, "", "", "", "", StageValues(), StageValues()).to_dict())
    assert set(SearchResponseModel.model_fields) == set(SearchResponse("q", [], {}, []).to_dict())


def test_unknown_search_options_are_refused(searcher):
    with pytest.raises(TypeError, match="unknown search option"):
        searcher.search("ቡና", topk=3)
