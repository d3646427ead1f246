"""Real-time delivery: the broker (in-process or Redis), the WebSocket hub, the envelope.

Publishers call `app.realtime.publish.publish_call_message`; the pipeline step lives in
`app.realtime.steps`; sockets are served by `app.api.ws` through `app.realtime.hub`.
"""
