"""Near repeat: the recent burglaries and vehicle crimes (whatever the packs count) at other
households close to a caller's.

Read at every lookup and never cached with the caller's summary: a neighbour's new contact
does not change the caller's generation counters. One query, served by
`ix_contact_grid_cell_occurred_at`: the contacts of the few grid cells around each household
with coordinates, in the window, then the exact distance here. Its cost follows the number of
recent contacts near the caller, not the size of the history.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from app.db_direct import Reader
from app.history import geo
from app.history.models import Contact
from app.history.store_links import fixed_rows
from app.rules.facts import CallerFacts, NearbyIncident
from app.rules.ruleset import NearNeed

# Built once (app.db_direct keeps it compiled): the cells and types expand per lookup.
_NEARBY = select(
    Contact.id,
    Contact.occurred_at,
    Contact.incident_type,
    Contact.easting,
    Contact.northing,
    Contact.household_id,
).where(
    Contact.grid_cell.in_(bindparam("cells", expanding=True)),
    Contact.occurred_at >= bindparam("since", type_=Contact.occurred_at.type),
    Contact.occurred_at <= bindparam("now", type_=Contact.occurred_at.type),
    Contact.incident_type.in_(bindparam("types", expanding=True)),
)


async def nearby(
    session: Reader,
    homes: dict[str, tuple[float, float]],
    need: NearNeed,
    now: datetime,
) -> list[NearbyIncident]:
    """Contacts of `need`'s incident types within its radius of any of `homes` (household id
    -> easting, northing) in its window, each once (nearest home), the homes' own excluded."""
    if not homes:
        return []
    cells = sorted(
        {c for e, n in homes.values() for c in geo.cells_around(e, n, need.within_metres)}
    )
    params = {
        "cells": cells,
        "since": now - timedelta(days=need.within_days),
        "now": now,
        "types": sorted(need.incident_types),
    }
    rows = await fixed_rows(session, _NEARBY, params)
    found: list[NearbyIncident] = []
    for cid, occurred_at, incident_type, easting, northing, household_id in rows:
        if household_id in homes or easting is None or northing is None:
            continue
        metres, home = min((geo.distance((easting, northing), at), h) for h, at in homes.items())
        if metres <= need.within_metres:
            found.append(
                NearbyIncident(
                    id=cid,
                    occurred_at=occurred_at,
                    incident_type=incident_type,
                    distance_m=round(metres, 1),
                    near_household_id=home,
                )
            )
    found.sort(key=lambda n: (n.distance_m, n.id))
    return found


async def with_nearby(session: Reader, facts: CallerFacts, need: NearNeed | None) -> CallerFacts:
    """`facts` with the near-repeat candidates of the caller's households that have
    coordinates (unchanged when no rule needs them or no household has any)."""
    if need is None:
        return facts
    homes = {
        h.id: (h.easting, h.northing)
        for h in facts.households
        if h.easting is not None and h.northing is not None
    }
    if not homes:
        return facts
    found = await nearby(session, homes, need, facts.now)
    return facts.model_copy(update={"nearby": found}) if found else facts
