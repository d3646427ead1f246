"""GET /ws: the live channel of a handler (their calls) or of supervisors (every call).

Authentication: `Authorization: Bearer <token>` or the browser's session cookie; never a token
in the URL. `?after=<cursor>` resumes. Messages, close codes and the client's duties (answer
`ping` with `pong`, resume with the last `id`) are in README.md and `app.realtime.hub`.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.resources import Resources

router = APIRouter(tags=["realtime"])


@router.websocket("/ws")
async def live(websocket: WebSocket, after: str | None = None) -> None:
    resources: Resources = websocket.state.resources
    hub = resources.hub
    if hub is None:  # set by the lifespan before anything is served
        raise RuntimeError("no socket hub in this process")
    await hub.serve(websocket, after)
