"""YAML with line numbers: plain data plus where each key and item came from.

PyYAML's `safe_load` forgets positions. Composing the node graph ourselves keeps each node's
mark, so a pydantic error's `loc` (a path of keys and indexes) can be turned back into the
line a force's editor should look at. Duplicate keys, which `safe_load` silently resolves to
the last one, are refused here because a pack that says two things says nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C loader is much faster; both report the same marks
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _Base  # type: ignore[assignment]


class _Loader(_Base):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads no/yes/on/off as booleans,
    which would turn the negation word `no` of a cue pack into False."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

Path = tuple[str | int, ...]


class SourceError(ValueError):
    """The text is not usable YAML (or has duplicate keys); carries a 1-based line."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class SourceMap:
    """Line (1-based) of every mapping key and sequence item, by its path from the root."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, data: Any, loc: tuple[Any, ...]) -> int:
        """The line of the deepest part of `loc` that exists in `data`.

        Parts of a pydantic `loc` that are not in the data (a discriminated union's tag,
        a validator's name) are skipped rather than ending the walk.
        """
        path = resolve(data, loc)
        while path:
            line = self.lines.get(tuple(path))
            if line is not None:
                return line
            path.pop()
        return self.lines.get((), 1)


def resolve(data: Any, loc: tuple[Any, ...]) -> list[str | int]:
    """The parts of `loc` that walk through `data` (others, such as union tags, skipped)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    return path


def load(text: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data and its source map."""
    _refuse_aliases(text)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise SourceError(line, f"not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(1, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    source = SourceMap()
    if root is None:
        return None, source
    source.lines[()] = root.start_mark.line + 1
    return _build(loader, root, (), source, set()), source


def _refuse_aliases(text: str) -> None:
    # The composed graph only knows the anchor's position; the events know the alias's.
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise SourceError(
                    mark.line + 1 if mark is not None else 1,
                    "YAML anchors and aliases (&name, *name) are not supported",
                )
    except yaml.YAMLError:
        return  # composing reports it, with its line


def _build(loader: Any, node: yaml.Node, path: Path, source: SourceMap, seen: set[int]) -> Any:
    # An alias is the same node object met twice. Refused: nested aliases expand
    # exponentially ("billion laughs"), and an aliased rule would have two places at once.
    if id(node) in seen:
        raise SourceError(
            node.start_mark.line + 1, "YAML anchors and aliases (&name, *name) are not supported"
        )
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SourceError(key_node.start_mark.line + 1, "a key must be a plain scalar")
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key == "<<":
                raise SourceError(line, "YAML merge keys (<<) are not supported in packs")
            if key in result:
                raise SourceError(line, f"duplicate key {key!r}")
            child = (*path, key)
            source.lines[child] = line
            result[key] = _build(loader, value_node, child, source, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            child = (*path, index)
            source.lines[child] = item_node.start_mark.line + 1
            items.append(_build(loader, item_node, child, source, seen))
        return items
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise SourceError(node.start_mark.line + 1, f"bad value: {exc}") from exc
