"""Who may do what: one table of role -> capabilities, and pure functions over it (no I/O).

Every route, screen and the WebSocket ask here; nothing else holds a set of roles. A
capability is either not tied to a call (the board, the QA screens, staff management) or
tied to one, and then the table says how far it reaches:

- `Reach.every_call`: any call (supervisors, QA, admins);
- `Reach.own_calls`: calls the principal has handled, now or earlier (a transfer keeps the
  earlier handler on `Call.handlers`);
- `Reach.current_call`: only while the call is at the principal's desk (`Call.handler_id`).

Outside the table: `/healthz` and `/readyz` (anyone: load balancers) and `/metrics` (a
scraper's own token or address, METRICS_TOKEN / METRICS_ALLOW_IPS: app.api.metrics), which
no staff role or integration token opens.

Denials stay where they are raised (each domain keeps its own error code and message); this
module only answers yes or no. The whole matrix is exercised by tests/test_access_matrix.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum, StrEnum
from typing import Protocol

from app.auth.models import Role


class Capability(StrEnum):
    # -- tied to a call ------------------------------------------------------------------
    read_call = "read_call"  # the call record, its events, its THRIVE+ state and assessment
    act_on_call = "act_on_call"  # write incident type, narrative, marks, draft, assessment
    acknowledge_alert = "acknowledge_alert"  # the repeat-victim check on the call's alerts
    search_history = "search_history"  # the caller's stored context, household lookups
    # Search the force's records for a live or wrap-up call and link who is found to it.
    identify_subjects = "identify_subjects"
    # Say what the call is beyond its incident type (domestic abuse, hate crime, ...).
    qualify_call = "qualify_call"
    open_call_screen = "open_call_screen"  # the call's page (handler screen / supervisor detail)
    read_draft = "read_draft"  # a handler's saved assessment form for the call
    # Say whether an alert on the call helped (issue 15): the people it was raised for.
    give_alert_feedback = "give_alert_feedback"
    # -- not tied to a call --------------------------------------------------------------
    # Any route for people (/api/v1/me, the pages' data, the API documents): every role but
    # the machines'. Integration tokens are refused there (issue 16), whatever else they hold.
    staff_routes = "staff_routes"
    desk = "desk"  # the handler's screen, calls at their desk, their own live channel
    watch_board = "watch_board"  # the supervisor board and the live channel of every call
    read_rules = "read_rules"  # the rule-pack catalogue
    reload_rules = "reload_rules"
    manage_staff = "manage_staff"  # list, create, revoke staff and their tokens
    read_audit = "read_audit"
    post_call_events = "post_call_events"  # CTI connectors (bearer token; webhooks are signed)
    update_records = "update_records"  # the force's records system keeps the history current
    export_assessments = "export_assessments"
    qa_form = "qa_form"  # read the QA form in use
    qa_sample = "qa_sample"  # draw and list QA samples
    qa_review = "qa_review"  # open a call's record for review, grade it; the QA screen
    qa_read_reviews = "qa_read_reviews"  # reviews (a handler: of their own calls only)
    qa_report = "qa_report"  # the monthly table, its charts and its page
    qa_report_by_handler = "qa_report_by_handler"  # the table broken down per handler
    record_training = "record_training"  # the training register: write and list
    training_summary = "training_summary"
    read_alert_precision = "read_alert_precision"  # per-rule precision from alert feedback


class Reach(Enum):
    """How far a capability reaches over calls (see the module's docstring)."""

    current_call = 1
    own_calls = 2
    every_call = 3


class Relation(Enum):
    """A principal's relation to a call."""

    none = 0
    earlier_handler = 1
    current_handler = 2


class HasRole(Protocol):
    """Who asks (app.auth.service.Principal fits)."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> Role: ...


class CallParties(Protocol):
    """Who a call is or was with (app.calls.models.Call fits)."""

    @property
    def handler_id(self) -> str | None: ...

    @property
    def handlers(self) -> Sequence[str] | None: ...


_E, _O, _C = Reach.every_call, Reach.own_calls, Reach.current_call
C = Capability

# The table. A capability a role does not list is refused to it. Reaches of capabilities
# not tied to a call are `every_call` (they only say "granted").
POLICY: Mapping[Role, Mapping[Capability, Reach]] = {
    Role.handler: {
        C.staff_routes: _E,
        C.read_call: _O,
        C.act_on_call: _C,
        C.acknowledge_alert: _C,
        C.search_history: _O,
        C.identify_subjects: _C,
        C.qualify_call: _C,
        C.open_call_screen: _O,
        C.read_draft: _O,  # their own draft only (app.thrive.drafts)
        C.give_alert_feedback: _O,
        C.desk: _E,
        C.read_rules: _E,
        C.qa_form: _E,
        C.qa_read_reviews: _O,  # reviews of their own calls only (app.qa.reviews)
    },
    Role.supervisor: {
        C.staff_routes: _E,
        C.read_call: _E,
        C.acknowledge_alert: _E,
        C.search_history: _E,
        C.identify_subjects: _E,
        C.qualify_call: _E,
        C.open_call_screen: _E,
        C.read_draft: _E,
        C.watch_board: _E,
        C.read_rules: _E,
        C.export_assessments: _E,
        C.qa_form: _E,
        C.qa_sample: _E,
        C.qa_review: _E,
        C.qa_read_reviews: _E,
        C.qa_report: _E,
        C.qa_report_by_handler: _E,
        C.record_training: _E,
        C.training_summary: _E,
        C.read_alert_precision: _E,
    },
    Role.qa: {
        C.staff_routes: _E,
        C.read_call: _E,
        C.read_rules: _E,
        C.export_assessments: _E,
        C.qa_form: _E,
        C.qa_sample: _E,
        C.qa_review: _E,
        C.qa_read_reviews: _E,
        C.qa_report: _E,
        C.qa_report_by_handler: _E,
        C.training_summary: _E,
    },
    Role.admin: {
        C.staff_routes: _E,
        C.read_call: _E,
        C.acknowledge_alert: _E,
        C.search_history: _E,
        C.open_call_screen: _E,
        C.read_draft: _E,
        C.watch_board: _E,
        C.read_rules: _E,
        C.reload_rules: _E,
        C.manage_staff: _E,
        C.read_audit: _E,
        C.export_assessments: _E,
        C.qa_form: _E,
        C.qa_sample: _E,
        C.qa_report: _E,
        C.record_training: _E,
        C.training_summary: _E,
        C.read_alert_precision: _E,
    },
    Role.integration: {
        C.post_call_events: _E,
        C.update_records: _E,
    },
}


def reach(role: Role, capability: Capability) -> Reach | None:
    """How far `role` holds `capability` (None: not at all)."""
    return POLICY.get(role, {}).get(capability)


def allows(principal: HasRole, capability: Capability) -> bool:
    """Whether the principal holds the capability at all (for some call, if tied to calls)."""
    return reach(principal.role, capability) is not None


def sees_every_call(principal: HasRole, capability: Capability) -> bool:
    """Whether the capability reaches every call (else a list must be narrowed to their own)."""
    return reach(principal.role, capability) is Reach.every_call


def roles_with(capability: Capability) -> frozenset[Role]:
    """The roles that hold a capability (for messages and documentation)."""
    return frozenset(role for role, caps in POLICY.items() if capability in caps)


def relation(principal_id: str, call: CallParties) -> Relation:
    if call.handler_id == principal_id:
        return Relation.current_handler
    if principal_id in (call.handlers or ()):
        return Relation.earlier_handler
    return Relation.none


def allows_on(principal: HasRole, capability: Capability, call: CallParties) -> bool:
    """Whether the principal may use the capability on this call."""
    granted = reach(principal.role, capability)
    if granted is None:
        return False
    if granted is Reach.every_call:
        return True
    related = relation(principal.id, call)
    if granted is Reach.own_calls:
        return related is not Relation.none
    return related is Relation.current_handler


# What a browser session opens on after login, first match wins (no match: no browser screens).
HOMES: tuple[tuple[Capability, str], ...] = (
    (C.desk, "/handler"),
    (C.watch_board, "/supervisor"),
    (C.qa_review, "/qa"),
)


def home_of(principal: HasRole) -> str | None:
    for capability, path in HOMES:
        if allows(principal, capability):
            return path
    return None
