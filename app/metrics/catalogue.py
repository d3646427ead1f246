"""Every metric the service keeps, by name (`GET /metrics`; the alert rules in
deploy/prometheus/alerts.yml use these names). Counted where it happens, with
`catalogue.NAME.inc(labels...)`; label values are bounded sets (sources, outcomes, close codes,
rule ids, audit actions), never ids or personal data.

What is read at scrape time instead (the pipeline's backlog, the outbox's) is in
app.metrics.exposition.
"""

from __future__ import annotations

import prometheus_client

from app.metrics.tally import Counter, Gauge, Histogram

# Counters' `_created` series double the output for nothing a rule uses.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_RESPONSES = Counter(
    "firstcontact_http_responses_total", "HTTP responses sent, by status code.", ["code"]
)
EVENTS = Counter(
    "firstcontact_events_total",
    "Telephony events received, by source and outcome (accepted, replay, invalid, "
    "rejected: refused before parsing, e.g. a bad signature; unavailable: 503, not stored).",
    ["source", "outcome"],
)
RING_TO_PUBLISH = Histogram(
    "firstcontact_ring_to_publish_seconds",
    "A ringing webhook's arrival to its frames handed to the broker (processed in the "
    "request: the webhook's own path).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
GROUP_SIZE = Histogram(
    "firstcontact_group_commit_size",
    "Webhook events per shared transaction (group commit, app.calls.grouping).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
PIPELINE_PROCESSED = Counter(
    "firstcontact_pipeline_processed_total",
    "Stored events whose steps ran and committed (in the webhook's transaction or the sweeper's).",
)
EXPRESS_EVENTS = Counter(
    "firstcontact_express_events_total",
    "Events stored and processed the express way (app.calls.express: two statements, no "
    "transaction).",
)
EXPRESS_FALLBACKS = Counter(
    "firstcontact_express_fallbacks_total",
    "Events of a type that may go express which took the locked path: a call not stored yet, a "
    "replay, a step that declined, or a call that changed between the read and the write.",
)
PIPELINE_FAILURES = Counter(
    "firstcontact_pipeline_failures_total",
    "Processing attempts rolled back by a failing step (the event is retried).",
)
SOCKETS_OPEN = Gauge("firstcontact_sockets_open", "WebSockets open, over the live workers.")
SOCKET_CLOSES = Counter(
    "firstcontact_socket_closes_total",
    "WebSockets closed or refused, by close code (client: the client closed or went away).",
    ["code"],
)
QUEUE_OVERFLOWS = Counter(
    "firstcontact_socket_queue_overflows_total",
    "Sockets whose frame queue overflowed (closed 4008; the client resumes).",
)
REDIS_ERRORS = Counter(
    "firstcontact_redis_errors_total",
    "Redis calls that failed, by where (publish: deferred to the in-memory queue; upstream: "
    "the live subscription dropped; cache).",
    ["where"],
)
DATABASE_ERRORS = Counter(
    "firstcontact_database_errors_total",
    "Requests answered 503 because the store could not serve, by error class.",
    ["error"],
)
ALERTS = Counter("firstcontact_alerts_total", "Alerts raised, by rule (id@version).", ["rule"])
SEARCHES = Counter(
    "firstcontact_searches_total",
    "Person and household searches served, by kind.",
    ["kind"],
)
AUDIT_WRITES = Counter(
    "firstcontact_audit_writes_total",
    "Audit log rows appended to the chain (committed), by action.",
    ["action"],
)
