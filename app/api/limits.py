"""Request body ceilings, enforced while the body streams in (not after it is buffered)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge


class BodySizeLimit:
    """Refuse bodies over a limit with 413: tighter on the telephony webhooks.

    A declared Content-Length over the limit is refused before reading; a chunked body is
    counted as it arrives and the read fails as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, default: int, prefixes: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.prefixes:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > limit:
                    await _refuse(send, 413, "payload_too_large", _too_large(limit))
                    return
        received = 0
        exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise PayloadTooLarge(_too_large(limit))
            return message

        replaced = False

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn the read error into their own 400; whatever the app answers
            # once the limit was passed, the client gets the 413 that says why.
            nonlocal replaced
            if exceeded:
                if not replaced and message["type"] == "http.response.start":
                    replaced = True
                    await _refuse(send, 413, "payload_too_large", _too_large(limit))
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
