"""The URLconf: no pattern can match a path meant for another, so their order is only a matter
of speed (reviewapp/urls.py puts the agents' routes first)."""

from __future__ import annotations

import re
import uuid

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern

# A value for each path converter the app uses whose values "abc" would not match.
SAMPLES = {"id": "12", "int": "12", "str": "abc", "slug": "abc-1", "uuid": str(uuid.uuid4()), "path": "a/b"}
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns, prefix: str = ""):
    """(route, pattern) for every pattern written with path() (not re_path), prefixes joined."""
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern):
            continue
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _sample(route: str) -> str:
    return "/" + CONVERTER.sub(lambda m: SAMPLES.get(m.group(1) or "str", "abc"), route)


def test_every_route_resolves_to_itself():
    routes = list(_routes(get_resolver().url_patterns))
    assert len(routes) > 100  # the walk found the app's routes, not an empty list
    shadowed = []
    for route, _pattern in routes:
        match = resolve(_sample(route))
        if match.route != route:
            shadowed.append(f"{_sample(route)}: meant for {route!r}, matched {match.route!r}")
    assert shadowed == []


def test_the_agents_routes_are_tried_first():
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    first = [str(p.pattern) for p in api.url_patterns[:3]]
    assert first[0] == "" and api.url_patterns[0].urlconf_name.__name__ == "escalations.urls_api"
    assert first[1:] == ["conversations", "judge-scores"]
