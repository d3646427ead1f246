"""The words a rule pack may use: id and text shapes, the whitelist of facts, operators,
subjects and categories a condition may name, and the placeholders each condition kind
offers to templates. Split from `app.rules.schema` (the pack models) so the whitelist reads
on its own; the catalogue lists it for a UI.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

# Ids are what other records point at (an alert's rule, an advice item "given"): keep them
# plain so they survive in URLs, CSV exports and logs.
Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.\-]*$", max_length=80)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
# Where an advice or prompt item's wording comes from (a guidance page, a code, an act).
Source = Annotated[str, StringConstraints(min_length=3, max_length=300, strip_whitespace=True)]

# The whitelist: facts a condition may read and the operators it may compare with.
FACTS: dict[str, str] = {
    "contacts": "prior contacts (any), from the caller facts' contact lists",
    "victim_contacts": "prior contacts where the person was recorded as a victim",
    "da_contacts": "prior contacts flagged as domestic abuse",
    "markers": "active markers (not expired at the time of the call), or markers set recently",
    "presentation": "how the number was presented: allowed, withheld or unavailable",
    "this_call": "what this call is: its incident type, or a qualifier on it (domestic abuse)",
    "nearby_incidents": "recent contacts at other households near the caller's (near repeat)",
}
COUNT_FACTS = ("contacts", "victim_contacts", "da_contacts")
OPERATORS: dict[str, str] = {
    ">=": "at least",
    ">": "more than",
    "==": "exactly",
    "!=": "not",
    "<=": "at most",
    "<": "fewer than",
}
# Whose contacts a `count` condition counts; it holds when any one of them reaches the value.
COUNT_SUBJECTS: dict[str, str] = {
    "number": "the calling number (whoever called from it)",
    "number_if_no_person": "the calling number, only when no person is linked to it",
    "person": "each person linked to the calling number",
    "household": "each current household of those persons (anyone at that address)",
}
# What the incident-type catalogue says an incident is (`category:` in the advice pack); a
# `count` condition may count only some. `unknown`: a contact with no incident type, or one
# the catalogue does not know or does not classify.
CATEGORIES: dict[str, str] = {
    "crime": "a crime (the victim has Victims' Code rights)",
    "asb": "anti-social behaviour that is not a crime",
    "other": "neither (concern for welfare, a missing person, ...)",
    "unknown": "no incident type recorded, or one the catalogue does not classify",
}
# Whose markers a `markers` condition looks at.
MARKER_SUBJECTS: dict[str, str] = {
    "caller": "persons linked to the calling number",
    "household_member": "other members of the callers' households",
    "household": "the households themselves",
}
# What a marker is about (issue 13): the screen shows officer safety first under its own
# heading, and only safeguarding and needs markers are ever worded as vulnerability.
MARKER_CATEGORIES: dict[str, str] = {
    "officer_safety": "a danger to the officers who attend (firearms, weapons, violence)",
    "safeguarding": "a person at risk of harm (DA high risk, child protection, missing)",
    "orders": "court orders, bail conditions and offender management",
    "needs": "how to communicate with or support a person (interpreter, disability)",
    "history": "what happened before (MARAC case, previous missing episodes)",
}
MarkerCategory = Literal["officer_safety", "safeguarding", "orders", "needs", "history"]
# Placeholders each condition kind offers to an alert's title and reason templates. `who` and
# `subject` are plain words (a name, the relationship to the caller, the age; an address),
# never an internal id: handlers read them.
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    # count_with_this: the count with the current call (forces count "this call is the
    # third"); score and last_days_ago: the recency weighting (a `half_life_days` condition).
    "count": frozenset(
        {
            "subject",
            "count",
            "count_with_this",
            "threshold",
            "within_days",
            "fact",
            "score",
            "last_days_ago",
        }
    ),
    "markers": frozenset({"subject", "who", "relationship", "marker", "marker_kind", "category"}),
    "presentation": frozenset({"presentation"}),
    "this_call": frozenset({"call_is"}),
    "near_repeat": frozenset(
        {"count", "within_metres", "within_days", "incident", "metres", "days_ago"}
    ),
}

# A prompt's priority: 1 ask now (life and safety), 2 must ask, 3 when there is time.
Priority = Literal[1, 2, 3]
PRIORITIES: dict[int, str] = {
    1: "ask now: life and safety (shown first)",
    2: "must ask (shown)",
    3: "ask when there is time (folded)",
}
# The kinds of advice an incident type or qualifier lists, in the order a handler reads them
# (preservation first: the golden hour).
ADVICE_KINDS = ("preservation", "prevention", "support")
Op = Literal[">=", ">", "==", "!=", "<=", "<"]
Severity = Literal["critical", "high", "medium", "low", "info"]
Category = Literal["crime", "asb", "other"]
Grade = Literal["emergency", "priority", "scheduled", "resolution_without_deployment"]
