"""HTTP and WebSocket routers: thin, one per resource."""
