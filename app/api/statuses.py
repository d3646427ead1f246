"""Every status an operation can answer, listed in the OpenAPI document (issue 16).

Most error statuses come from layers every route shares rather than from its handler, so they
are added here from what the route is, never written out route by route (a new route cannot
forget them):

- any route: 400 (query, form or path not UTF-8), 422 (input bounds: NUL, lone surrogates,
  integers past int64, and the route's own validation), 503 (database unreachable);
- a route with a body: 413 (over MAX_BODY);
- a route that needs a staff member (`get_principal` among its dependencies): 401 (no or bad
  credentials) and 403 (a role without the capability, a cookie request from another origin);
- a route naming a record by id (a path parameter, or a `call_id` in the query): 404;
- the call-time writes (an `Idempotency-Key` still in flight, a closed call, a stale draft):
  409; and what is particular to a route (`EXTRA`).

A status the route documents itself keeps its own description. Every error body is the one
envelope, `ErrorBody`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.api.deps import authenticated

# Statuses particular to a route that the rules below cannot see: (method, path).
EXTRA: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/api/v1/staff"): {409: "a staff member with that id exists (`staff_exists`)"},
    ("POST", "/api/v1/qa/reviews"): {
        404: "the call (`call_id` in the body) does not exist",
        409: "`already_reviewed` by this reviewer, or a concurrent review",
    },
    ("GET", "/api/v1/history/search"): {
        409: "the call is closed (`call_closed`)",
        429: "over `SEARCH_RATE_PER_MINUTE` searches this minute (`too_many_requests`, with "
        "`Retry-After`)",
    },
    ("GET", "/api/v1/history/households"): {
        429: "over `SEARCH_RATE_PER_MINUTE` searches this minute (`too_many_requests`, with "
        "`Retry-After`)",
    },
}
CALL_WRITE = re.compile(r"^/api/v1/calls/\{call_id\}/")
CALL_WRITE_CONFLICT = (
    "the call is closed (`call_closed`), the draft or assessment changed meanwhile, or a "
    "request with the same `Idempotency-Key` is still in flight"
)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


GENERIC = {
    400: "a query string, form or path that is not UTF-8 (`bad_request`)",
    422: "input out of bounds or not valid (`validation_error` and the route's own codes)",
    503: "the database cannot be reached (`unavailable`, with `Retry-After`)",
}
WITH_BODY = {413: "the body is over its ceiling (`MAX_BODY`)"}
WITH_STAFF = {
    401: "no credential, or one unknown, revoked or expired",
    403: "the role lacks the capability, an integration token on a staff route, a cookie "
    "request from another origin, or a search outside the call's live or wrap-up time",
}
WITH_ID = {404: "no such record"}


def statuses_of(route: Any, method: str) -> dict[int, str]:
    """The statuses `route` can answer to `method` beyond those it documents itself."""
    found = dict(GENERIC)
    if route.body_field is not None or method in ("POST", "PUT", "PATCH"):
        found.update(WITH_BODY)
    if authenticated in set(_calls(route.dependant)):
        found.update(WITH_STAFF)
    query = {p.name for p in route.dependant.query_params}
    if route.dependant.path_params or "call_id" in query:
        found.update(WITH_ID)
    if method in ("POST", "PUT") and CALL_WRITE.match(route.path_format):
        found[409] = CALL_WRITE_CONFLICT
    found.update(EXTRA.get((method, route.path_format), {}))
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def document_statuses(app: FastAPI) -> None:
    """Add each operation's shared statuses to the app's OpenAPI document."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done: list[bool] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not done:
            _add(app, schema)
            done.append(True)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add(app: FastAPI, schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    # Included routers are resolved lazily: their routes, with the prefixes applied, are the
    # route contexts (what FastAPI's own document is built from).
    for route in routing.iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in statuses_of(route, method).items():
                responses.setdefault(str(status), {"description": description, "content": content})
