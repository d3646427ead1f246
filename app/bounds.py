"""What untrusted input may hold, checked the same way on HTTP requests and WebSocket frames.

Each rule exists because the stores refuse the value with an error deep in a request, after
the request was accepted (a 500, and on PostgreSQL a driver message that quotes the data):

- text: no NUL (PostgreSQL's text type cannot hold it) and no lone surrogate (not Unicode:
  neither database driver can encode it). JSON lets both through as `\\u0000` / `\\ud800`.
- integers: within the 64-bit range of BIGINT columns and SQLite's INTEGER.
- JSON: nested at most `MAX_JSON_DEPTH` levels (our documents are a few levels deep; deeper
  ones only cost recursion), numbers finite (JSON has no NaN or Infinity).
- query strings and form bodies: UTF-8 once percent-decoded.

The checks report where and what, never the value (`Problem`): an error answer or a log line
must not echo a narrative or a number back.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote_to_bytes

from pydantic import TypeAdapter, ValidationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32

# NUL, or any surrogate code point: in a decoded `str` a surrogate is always a lone one (a
# valid pair decodes to one astral character).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# The shapes pydantic reads as an integer from text (" +1_000 ", "12.0"): the only ones that
# can reach an integer column. 19 digits is the shortest text outside the int64 range.
_INT_TEXT = re.compile(r"\s*[+-]?[0-9][0-9_]*(?:\.0*)?\s*")
_SHORTEST_OUT_OF_RANGE = len(str(INT64_MAX))
_LAX_INT = TypeAdapter(int)


@dataclass(frozen=True)
class Problem:
    """Why a value was refused: where (`loc`), what (`msg`), a machine-readable `type`, and
    the HTTP status that fits (400: not even well-formed text; 422: well-formed but refused)."""

    loc: tuple[str, ...]
    msg: str
    type: str
    status: int = 422

    def detail(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class Refused(ValueError):
    """Input that breaks one of the rules above."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.msg)
        self.problem = problem


def text_problem(value: str, loc: tuple[str, ...]) -> Problem | None:
    match = _BAD_TEXT.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return Problem(loc, "text must not contain NUL (\\u0000)", "string_nul")
    return Problem(loc, "text must not contain a lone surrogate (not Unicode)", "string_surrogate")


def int_problem(value: int, loc: tuple[str, ...]) -> Problem | None:
    if INT64_MIN <= value <= INT64_MAX:
        return None
    return Problem(loc, f"integer must be between {INT64_MIN} and {INT64_MAX}", "int_out_of_range")


def int_text_problem(value: str, loc: tuple[str, ...]) -> Problem | None:
    """A path segment or query value that would be read as an integer outside int64."""
    if len(value) < _SHORTEST_OUT_OF_RANGE or _INT_TEXT.fullmatch(value) is None:
        return None
    try:
        number = _LAX_INT.validate_python(value)
    except ValidationError:
        return None
    return int_problem(number, loc)


def _key(part: object) -> str:
    # Field names and indexes locate a problem; a long key is cut (it is the client's text).
    text = str(part)
    return text if len(text) <= 64 else text[:64] + "..."


def json_problem(document: object, root: tuple[str, ...] = ()) -> Problem | None:
    """The first string, key, integer or float in `document` that breaks the rules, or a
    nesting deeper than MAX_JSON_DEPTH. Iterative: the check itself never recurses."""
    stack: list[tuple[object, tuple[str, ...], int]] = [(document, root, 0)]
    while stack:
        value, loc, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value, loc)
        elif isinstance(value, bool) or value is None:
            problem = None
        elif isinstance(value, int):
            problem = int_problem(value, loc)
        elif isinstance(value, float):
            problem = None if math.isfinite(value) else _not_finite(loc)
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return _too_deep(loc)
            if isinstance(value, dict):
                for key, item in value.items():
                    key_problem = text_problem(key, loc)
                    if key_problem is not None:
                        return Problem(loc, "a key: " + key_problem.msg, key_problem.type)
                    stack.append((item, (*loc, _key(key)), depth + 1))
            else:
                stack.extend((item, (*loc, str(i)), depth + 1) for i, item in enumerate(value))
            problem = None
        else:  # only JSON types come out of json.loads
            problem = None
        if problem is not None:
            return problem
    return None


def _too_deep(loc: tuple[str, ...]) -> Problem:
    return Problem(loc, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "json_too_deep")


def _not_finite(loc: tuple[str, ...]) -> Problem:
    return Problem(loc, "numbers must be finite (no NaN or Infinity)", "float_not_finite")


def _refuse_constant(_name: str) -> NoReturn:
    raise Refused(_not_finite(("body",)))


def loads(data: str | bytes, root: tuple[str, ...] = ()) -> Any:  # as json.loads gives it
    """Parse JSON and apply the rules: `Refused` for a document that breaks them, ValueError
    (json.JSONDecodeError, UnicodeDecodeError) for one that is not JSON at all."""
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:  # thousands of `[`: far past the bound, refused the same way
        raise Refused(_too_deep(root)) from None
    except Refused as exc:
        raise Refused(Problem(root, exc.problem.msg, exc.problem.type)) from None
    problem = json_problem(document, root)
    if problem is not None:
        raise Refused(problem)
    return document


def undecodable(data: bytes, loc: tuple[str, ...], what: str) -> Problem:
    """Why bytes that are not UTF-8 are refused: a surrogate encoded as if it were a
    character (what a lone `\\ud800` becomes in a URL) is the lone surrogate every text field
    refuses (422); anything else is simply not UTF-8 (400)."""
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return Problem(loc, f"the {what} is not UTF-8", "string_unicode", status=400)
    return Problem(loc, f"the {what} holds a lone surrogate", "string_surrogate")


def form_problem(raw: bytes, where: str) -> Problem | None:
    """A query string or an urlencoded form body: each name and value percent-decoded must
    be UTF-8 without NUL, and a value read as an integer must fit int64."""
    if not raw:
        return None
    for pair in raw.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(raw_name.replace(b"+", b" "))
        value_bytes = unquote_to_bytes(raw_value.replace(b"+", b" "))
        try:
            name = name_bytes.decode("utf-8")
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return undecodable(name_bytes + value_bytes, (where,), where)
        safe_name = name if name.isprintable() and len(name) <= 64 else "?"
        loc = (where, safe_name)
        problem = (
            text_problem(name, (where,)) or text_problem(value, loc) or int_text_problem(value, loc)
        )
        if problem is not None:
            return problem
    return None


def path_problem(path: str, raw_path: bytes | None) -> Problem | None:
    """The request path: UTF-8 once percent-decoded, no NUL, no segment read as an integer
    outside int64 (the path's integers are ids).

    Route-blind on purpose (it must cover routes added later): a text id made only of 19+
    digits whose value is past int64 is refused too. No id we issue has that shape; a
    force's staff id could (staff ids allow digits), and would then be revoked by the CLI."""
    if raw_path is not None:
        decoded = unquote_to_bytes(raw_path)
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return undecodable(decoded, ("path",), "path")
    problem = text_problem(path, ("path",))
    if problem is not None:
        return problem
    for segment in path.split("/"):
        problem = int_text_problem(segment, ("path",))
        if problem is not None:
            return problem
    return None
