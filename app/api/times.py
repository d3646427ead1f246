"""Times in query strings: RFC 3339 with an offset, and nothing else.

Pydantic's datetime also reads a number as seconds since 1970 (`?until=0.5` would mean the
first half-second of 1970): a client that sent one made a mistake, so it gets 422 with the
reason instead of an answer about 1970.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
REASON = "an RFC 3339 time with an offset is expected, e.g. 2025-01-31T17:45:00Z"


def _rfc3339_only(value: object) -> object:
    if isinstance(value, str) and RFC3339.match(value):
        return value
    raise ValueError(REASON)


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
