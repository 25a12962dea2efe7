"""Which route served a request, named by its template: what logs and metrics say
instead of the raw path, which may hold ids and whatever else a caller typed."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import Scope

UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request, or `unmatched`.

    FastAPI's routes put themselves in the scope; plain Starlette routes (docs, metrics,
    the docs' assets) leave their endpoint, which is looked up among the app's routes.
    """
    route = scope.get("route")
    if route is None and "endpoint" in scope and "app" in scope:
        endpoint = scope["endpoint"]
        route = next(
            (
                r
                for r in scope["app"].routes
                if getattr(r, "endpoint", None) is endpoint or getattr(r, "app", None) is endpoint
            ),
            None,
        )
    # path_format drops convertors ({candidate_id:record_id} -> {candidate_id}): the
    # template as the spec names it.
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def match_route(scope: Scope) -> None:
    """Put in the scope the route a request would have reached, for a request answered
    before routing (a body refused on its Content-Length): its logs and metrics then
    name that route. A route that takes another method will do (its 405 would have
    named it too)."""
    partial = None
    for route in getattr(scope.get("app"), "routes", ()):
        match, child = route.matches(scope)
        if match is Match.FULL:
            scope.update(child)
            return
        if match is Match.PARTIAL and partial is None:
            partial = child
    if partial is not None:
        scope.update(partial)
