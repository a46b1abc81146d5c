import pytest

from amharic_search.search.fusion import normalize, ranked, rrf, weighted_sum


def test_rrf_hand_computed():
    fused = rrf({"bm25": [10, 20, 30], "dense": [30, 40]}, k=60)
    assert fused[10] == pytest.approx(1 / 61)
    assert fused[20] == pytest.approx(1 / 62)
    assert fused[30] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[40] == pytest.approx(1 / 62)
    assert [d for d, _ in ranked(fused)] == [30, 10, 20, 40]  # 20 and 40 tie: lower id first


def test_rrf_weights_and_k():
    fused = rrf({"bm25": [1], "dense": [2]}, k=10, weights={"bm25": 2.0, "dense": 1.0})
    assert fused == {1: pytest.approx(2 / 11), 2: pytest.approx(1 / 11)}


def test_weighted_sum_minmax():
    fused = weighted_sum({"bm25": ([1, 2, 3], [10.0, 6.0, 2.0]), "dense": ([3, 4], [0.9, 0.5])},
                         weights={"bm25": 0.5, "dense": 0.5})
    # bm25 normalized: 1 -> 1, 2 -> 0.5, 3 -> 0; dense: 3 -> 1, 4 -> 0; missing -> stage minimum (0)
    assert fused == {1: pytest.approx(0.5), 2: pytest.approx(0.25), 3: pytest.approx(0.5), 4: pytest.approx(0.0)}


def test_normalize():
    assert list(normalize([2.0, 2.0])) == [1.0, 1.0]
    z = normalize([1.0, 2.0, 3.0], "zscore")
    assert z.mean() == pytest.approx(0.0) and z.std() == pytest.approx(1.0)


def test_fusion_config_default_and_round_trip():
    from amharic_search.search.fusion import FusionConfig

    d = FusionConfig()
    assert d.to_dict() == {"method": "weighted", "weights": {"bm25": 0.7, "dense": 0.3}, "normalization": "zscore", "depth": 300}
    assert FusionConfig.from_dict(d.to_dict()) == d
    assert FusionConfig.from_dict(None) == d
    r = FusionConfig(method="rrf", k=10, weights={"bm25": 1.0, "dense": 0.5})
    assert FusionConfig.from_dict(r.to_dict()) == FusionConfig(method="rrf", k=10, weights={"bm25": 1.0, "dense": 0.5})
    fused = r.fuse({"bm25": ([1, 2], [9.0, 3.0]), "dense": ([2], [0.5])})
    assert fused == {1: pytest.approx(1 / 11), 2: pytest.approx(1 / 12 + 0.5 / 11)}
