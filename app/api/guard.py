"""The input guard: `app.bounds` applied to every HTTP request before any route sees it.

One ASGI middleware rather than per-route checks, so that every route is covered, including
routes added later: the path, the query string, and JSON or urlencoded form bodies. A request
that breaks a rule gets the usual validation envelope (422, or 400 for text that is not
UTF-8) naming where and why, never the value.

The telephony webhooks' bodies are left to the webhooks: they are signed raw bytes, checked
after the signature, and each event is refused on its own (`invalid_event`; in a batch, the
others are still stored). See app.telephony.events.

The OpenAPI schema states the integer bound too (`document_bounds`): every integer without
its own limits is given int64's, so clients and fuzzers see what is enforced here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import bounds
from app.api.errors import envelope
from app.errors import PayloadTooLarge

# Bodies these routes check themselves (see the module docstring).
OWN_BODY_CHECKS = ("/api/v1/telephony/",)

_JSON, _FORM, _OTHER = "json", "form", "other"


def _body_kind(scope: Scope) -> str:
    content_type = b""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
            break
    if content_type == b"application/x-www-form-urlencoded":
        return _FORM
    if (
        not content_type
        or content_type == b"application/json"
        or (content_type.startswith(b"application/") and content_type.endswith(b"+json"))
    ):
        return _JSON
    return _OTHER


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = bounds.path_problem(scope["path"], scope.get("raw_path")) or bounds.form_problem(
            scope.get("query_string", b""), "query"
        )
        if problem is not None:
            await _refuse(problem, scope, receive, send)
            return
        kind = _body_kind(scope)
        if kind == _OTHER or scope["path"].startswith(OWN_BODY_CHECKS):
            await self.app(scope, receive, send)
            return
        try:
            body, more = await _read_body(receive)
        except PayloadTooLarge as exc:  # from the body-size limit around us
            await envelope(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        if body:
            problem = _body_problem(kind, body)
            if problem is not None:
                await _refuse(problem, scope, receive, send)
                return
        await self.app(scope, _replay(body, more, receive), send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any message that is not part of it (a disconnect) to pass on."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, pending: list[Message], receive: Receive) -> Receive:
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *pending]

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def _body_problem(kind: str, body: bytes) -> bounds.Problem | None:
    if kind == _FORM:
        return bounds.form_problem(body, "body")
    try:
        bounds.loads(body, ("body",))
    except bounds.Refused as exc:
        return exc.problem
    except ValueError:  # not JSON (or not UTF-8): the route answers that in its own words
        return None
    return None


async def _refuse(problem: bounds.Problem, scope: Scope, receive: Receive, send: Send) -> None:
    if problem.status == 400:
        response = envelope(400, "bad_request", problem.msg, [problem.detail()])
    else:
        response = envelope(422, "validation_error", "request did not validate", [problem.detail()])
    await response(scope, receive, send)


def _bound_integers(node: object) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            if "minimum" not in node and "exclusiveMinimum" not in node:
                node["minimum"] = bounds.INT64_MIN
            if "maximum" not in node and "exclusiveMaximum" not in node:
                node["maximum"] = bounds.INT64_MAX
        for value in node.values():
            _bound_integers(value)
    elif isinstance(node, list):
        for value in node:
            _bound_integers(value)


def document_bounds(app: FastAPI) -> None:
    """Give every integer of the app's OpenAPI schema int64's limits unless it has its own."""
    generate: Callable[[], dict[str, object]] = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            _bound_integers(generate())  # generate() caches the schema on the app
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Add the guard (call before the body-size limit is added: it must sit inside it, so
    that an oversized body is cut off while it streams in) and document the bounds."""
    app.add_middleware(InputGuard)
    document_bounds(app)
