"""The floor: a bare FastAPI app whose POST sends one frame on a socket (nothing else)."""

from __future__ import annotations

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

app = FastAPI()
sockets: list[WebSocket] = []


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
    await sockets[0].send_text(body.decode())
    return {"status": "sent"}
