"""Caller and household history: persons, phones, households, contacts, markers, alerts.

The lookup (`app.history.lookup`) turns a caller's number into `app.rules.facts.CallerFacts`
from a versioned summary cache with the store behind it; `app.history.steps` wires it into the
call pipeline; `app.history.importer` loads a force's CSV exports.
"""
