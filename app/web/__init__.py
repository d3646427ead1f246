"""The browser screens: handler's screen, supervisor's board, login (issue 7).

`install(app)` adds the pages, their data endpoints and /static; the lifespan registers
`app.auth.cookie.connection_principal` so that the WebSocket accepts the session cookie.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class NoStore:
    """`Cache-Control: no-store` on every response but static files: pages and API answers
    carry personal data that must not sit in a browser's or a proxy's cache. Static files get
    `no-cache` (kept, but revalidated with their ETag): the modules import each other by
    plain names, so an upgrade must never leave a browser mixing old and new ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = b"no-cache" if scope["path"].startswith("/static/") else b"no-store"

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", policy))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def install(app: FastAPI) -> None:
    from app.web import login, routes

    app.include_router(login.router)
    app.include_router(routes.router)
    app.include_router(routes.api)
    app.mount("/static", StaticFiles(directory=str(routes.STATIC_DIR)), name="static")
    app.add_middleware(NoStore)
