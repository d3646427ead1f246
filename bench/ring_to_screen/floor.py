"""The floor: a bare FastAPI app whose POST sends one frame on a socket (nothing else: no
auth, no parsing, no store). Sockets take the POSTs in turn, so the floor carries the same
number of sockets and frames as the service under the same schedule."""

from __future__ import annotations

import itertools

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

app = FastAPI()
sockets: list[WebSocket] = []
turn = itertools.count()


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    sockets.append(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        sockets.remove(websocket)


@app.post("/floor")
async def floor(request: Request) -> dict[str, str]:
    body = await request.body()
    await sockets[next(turn) % len(sockets)].send_text(body.decode())
    return {"status": "sent"}
