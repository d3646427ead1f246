"""The outermost layer of the app: each request's id (and, later, its call id) for the log
lines written while it is served, `X-Request-ID` on the answer, and the count of answers by
status for `GET /metrics`.

Outside Starlette's own error layer (app.main builds it around the whole stack): a 500
rendered there is counted, carries the header, and its log line carries the request id.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.correlation import CALL_ID, REQUEST_ID, request_id_from
from app.metrics import catalogue

HEADER = b"x-request-id"


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        raw = request_id.encode()
        request_token, call_token = REQUEST_ID.set(request_id), CALL_ID.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                catalogue.HTTP_RESPONSES.inc(str(message["status"]))
                message["headers"] = [*message.get("headers", ()), (HEADER, raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if kind == "http" else send)
        finally:
            REQUEST_ID.reset(request_token)
            CALL_ID.reset(call_token)
