"""The webhook's lane: the few requests per call event served by the app's own middleware
around their endpoint, without the framework's layers in between (issue 19).

A request reaches a route through FastAPI's and Starlette's stack: the root error layer, two
FastAPI layers (exception telemetry, its body limit), our middleware, the exception layer, an
exit stack, the router, the route and its request-response wrapper. For the canonical
webhook (a plain endpoint: no dependencies, its own body checks after the signature) those
framework layers and their send wrappers cost about as much CPU as the work the floor does
for a whole request. The lane keeps what matters of them and nothing else:

- our middleware, every one the app has (`user_middleware`, same order and arguments:
  request id, body limits, input guard, headers), so a layer added later applies here too;
- the app's exception handlers, looked up as Starlette's layers do (the exception's classes
  in order, a status code's own handler first for an HTTPException); an exception no handler
  takes gets the app's 500 handler and is raised again once answered, as Starlette's root
  error layer does, so that the server logs it.

Only POST to the lane's paths goes this way; any other method, and every other path, goes
through the app as before (405, OPTIONS, the OpenAPI document). A traced app (OpenTelemetry
wraps the framework's stack) has no lane: its requests are traced as every other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class Lane:
    def __init__(self, app: FastAPI, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = dict(endpoints)
        self._stack: ASGIApp | None = None

    def takes(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.endpoints
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stack = self._stack
        if stack is None:
            # Built at the first request, as the framework builds its own: every middleware
            # has been added by then.
            stack = self._stack = self._build()
        await stack(scope, receive, send)

    def _build(self) -> ASGIApp:
        stack: ASGIApp = self._endpoint
        for cls, args, kwargs in reversed(self.app.user_middleware):
            stack = cls(stack, *args, **kwargs)
        return stack

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # as the framework sets it (request.app)
        request = Request(scope, receive, send)
        try:
            response = await self.endpoints[scope["path"]](request)
        except Exception as exc:
            handler, last = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
            if last:
                await response(scope, receive, send)
                raise  # answered; the server logs it, as after Starlette's root error layer
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> tuple[Handler | None, bool]:
        """The handler for `exc` and whether it is the app's last resort (500)."""
        handlers: dict[Any, Handler] = self.app.exception_handlers  # type: ignore[assignment]
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code], False
        for cls in type(exc).__mro__:
            if cls is not Exception and cls in handlers:
                return handlers[cls], False
        return handlers.get(500) or handlers.get(Exception), True
