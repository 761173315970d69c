"""No I/O: GeoJSON feature validation, the tenant from Host, the rate limiter, If-Match."""

from __future__ import annotations

import pytest

from api.geojson_import import parse_network
from api.problems import ApiProblem
from api.routes.scenarios import expected_version
from api.security import RateLimiter


def collection(*features: dict[str, object]) -> dict[str, object]:
    return {"type": "FeatureCollection", "features": list(features)}


def link(coordinates: list[list[float]], **properties: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coordinates},
            "properties": properties}


def test_every_bad_feature_is_named_with_its_reason() -> None:
    good = link([[0, 0], [1, 1]], id="a", from_node=1, to_node=2, capacity=10, length=1,
                free_flow_time=1)
    no_capacity = link([[0, 0], [1, 1]], id="b", from_node=1, to_node=2, length=1,
                       free_flow_time=1)
    too_far_north = link([[0, 0], [1, 95]], id="c", from_node=1, to_node=2, capacity=1,
                         length=1, free_flow_time=1)
    network, problems = parse_network(collection(good, no_capacity, too_far_north),
                                      collection(), 1, 100)
    assert network is None
    assert [str(p) for p in problems] == [
        "links[1]: missing required property 'capacity'",
        "links[2]: position 1: (1, 95) is outside WGS84 (longitude -180..180, "
        "latitude -90..90)"]


def test_too_many_features_are_refused_whole() -> None:
    network, problems = parse_network(collection(*[{}] * 3), collection(), 1, 2)
    assert network is None and "at most 2" in problems[0].reason


def test_the_rate_limiter_answers_how_long_to_wait() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.acquire("acme") == 0 and limiter.acquire("acme") == 0
    assert 0 < limiter.acquire("acme") <= 1.0
    assert limiter.acquire("rival") == 0


@pytest.mark.parametrize(("header", "version"), [('"3"', 3), ("3", 3), ('W/"12"', 12)])
def test_if_match_names_a_version(header: str, version: int) -> None:
    assert expected_version(header) == version


def test_if_match_missing_is_428_and_garbage_is_412() -> None:
    with pytest.raises(ApiProblem) as missing:
        expected_version(None)
    with pytest.raises(ApiProblem) as garbage:
        expected_version('"a", "b"')
    assert (missing.value.status, garbage.value.status) == (428, 412)
