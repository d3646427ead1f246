"""Response headers every answer carries (issue 16): HSTS in production.

Production runs behind TLS (a proxy terminates it): `Strict-Transport-Security` tells the
browser to use https for this host from then on, so a network attacker cannot strip TLS
from the login page or the session cookie. Never sent elsewhere: a development host on
plain http would become unreachable to the browser that saw it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StrictTransportSecurity:
    def __init__(self, app: ASGIApp, max_age_seconds: int) -> None:
        self.app = app
        self.value = f"max-age={max_age_seconds}; includeSubDomains".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"strict-transport-security", self.value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)
