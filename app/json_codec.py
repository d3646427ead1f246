"""JSON encoding on the hot path: orjson.

Every event's canonical form, call state and context (JSON columns) and every frame go
through here: the standard library's encoder was 3-4% of the service's CPU per event in
profiles (issue 19), orjson about a tenth of that. What is hashed (the audit chain) keeps
its own fixed encoding and does not use this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

# Integer keys become strings, as with `json.dumps`; datetimes go to the caller's `default`
# (orjson writes its own format for them otherwise).
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text (no spaces after separators), UTF-8 rather than \\u escapes."""
    return orjson.dumps(value, default=default, option=_OPTIONS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
