"""The methods a path allows, from every route that serves it.

The routers are included lazily and Starlette stops at the first route whose path matches,
so a path served by two routes (GET and PUT on a draft) answered OPTIONS, and every 405,
with only the first route's methods. Here `OPTIONS` answers 204 with `Allow` listing the
methods of all the routes of the path (404 when none serves it), and a 405's `Allow` header
is replaced by the same list.
"""

from __future__ import annotations

from fastapi import routing
from starlette.responses import Response
from starlette.routing import Mount, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import envelope


def allowed_methods(app: object, path: str) -> set[str]:
    """Every method some route of `app` serves on `path` (and OPTIONS, answered here)."""
    found: set[str] = set()
    for route in routing.iter_route_contexts(getattr(app, "routes", [])):
        original = route.original_route
        if isinstance(original, Mount):
            if path.startswith(original.path.rstrip("/") + "/"):
                found.update({"GET", "HEAD"})
        elif isinstance(original, WebSocketRoute):
            if route.path_regex.match(path):
                found.add("GET")
        elif route.path_regex.match(path):
            found.update(route.methods or ())
    return found | {"OPTIONS"} if found else set()


class AllowedMethods:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = scope["type"] == "http"
        if http and scope["method"] == "OPTIONS":
            allowed = allowed_methods(scope.get("app"), scope["path"])
            response: Response = (
                Response(status_code=204, headers={"Allow": ", ".join(sorted(allowed))})
                if allowed
                else envelope(404, "not_found", "Not Found")
            )
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, _fixing_allow(scope, send) if http else send)


def _fixing_allow(scope: Scope, send: Send) -> Send:
    """`send`, with a 405's `Allow` header replaced by every method of the path."""

    async def fixed(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            allowed = ", ".join(sorted(allowed_methods(scope.get("app"), scope["path"])))
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
            message = {**message, "headers": [*headers, (b"allow", allowed.encode())]}
        await send(message)

    return fixed
