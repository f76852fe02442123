"""YAML that remembers where every key and value came from.

``parse`` turns YAML text into plain Python data plus a ``Positions`` index from a path inside
the document (``("services", "web", "ports", 0)``) to the line and column of that node, so that
validation errors can name ``deplat.yaml:12:9``. Duplicate keys, which YAML loaders silently
accept (the last one wins), are reported as problems here.

Aliases are checked before any Python object is built: a few hundred bytes of nested aliases (an
"alias bomb") expand to billions of values, which later code that copies or prints the data would
materialise. A document may use at most ``MAX_ALIASES`` aliases, expand to at most ``MAX_VALUES``
values, nest at most ``MAX_DEPTH`` levels and never contain itself through an alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

PathT = tuple[str | int, ...]


@dataclass
class Positions:
    """Line/column (1-based) of each node, and of each mapping key, by path."""

    values: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathT, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: PathT) -> tuple[int, int]:
        """The position of the node at ``path``, or of its nearest ancestor that exists."""
        for i in range(len(path), -1, -1):
            pos = self.values.get(tuple(path[:i]))
            if pos is not None:
                return pos
        return (1, 1)

    def of_key(self, path: PathT) -> tuple[int, int]:
        """The position of the key that names ``path`` (falls back to the value's position)."""
        return self.keys.get(tuple(path)) or self.of_value(path)


@dataclass(frozen=True)
class YamlProblem:
    line: int
    column: int
    path: PathT
    message: str


class YamlSyntaxError(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


# A real spec has a few hundred values and a handful of aliases; these limits are far above that.
MAX_ALIASES = 1000
MAX_VALUES = 50_000
MAX_DEPTH = 64

# libyaml's parser when PyYAML has it (same nodes and marks, several times faster).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str) -> tuple[Any, Positions, list[YamlProblem]]:
    """Parse one YAML document; raise ``YamlSyntaxError`` with its position if it is not YAML."""
    positions = Positions()
    problems: list[YamlProblem] = []
    try:
        _check_shape(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, positions, problems
            # Indexed before constructing: merge keys (``<<: *x``) are flattened into the node then.
            _index(node, (), positions, problems, set())
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        ctx = exc.context_mark
        if exc.problem and exc.context and ctx and ctx is not mark:
            what += f" ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
        raise YamlSyntaxError(line, col, f"invalid YAML: {what}") from exc
    except yaml.YAMLError as exc:  # e.g. a document with unsupported tags
        raise YamlSyntaxError(1, 1, f"invalid YAML: {exc}") from exc
    except (ValueError, TypeError, RecursionError) as exc:
        # The YAML constructors can fail on odd input (e.g. unhashable keys, huge nesting).
        raise YamlSyntaxError(1, 1, f"invalid YAML: {exc.__class__.__name__}: {exc}") from exc
    return data, positions, problems


def _check_shape(text: str) -> None:
    """Refuse a document that nests too deeply, has too many aliases or values, or contains itself.

    One pass over the parser's events, before any node is composed (libyaml composes recursively in
    C, so a very deep document would crash it) and stopping at the first limit crossed. An alias
    counts as the values its anchor expands to, so nested aliases are measured as they expand."""
    loader = _Loader(text)
    expanded: dict[str, int] = {}  # anchor -> values it expands to, once its node has ended
    opened: list[tuple[str | None, int]] = []  # open collections: (anchor, total when it started)
    total = aliases = 0

    def refuse(event: yaml.Event, message: str) -> YamlSyntaxError:
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return YamlSyntaxError(line, column, f"invalid YAML: {message}")

    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise refuse(event, f"more than {MAX_ALIASES} aliases; write the values out")
                if event.anchor not in expanded:
                    if any(anchor == event.anchor for anchor, _ in opened):
                        raise refuse(event, f"the alias *{event.anchor} refers to a node that contains it")
                    continue  # an unknown anchor: the composer reports it
                total += expanded[event.anchor]
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor:
                    expanded[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                total += 1
                opened.append((event.anchor, total - 1))
                if len(opened) > MAX_DEPTH:
                    raise refuse(event, f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, started = opened.pop()
                if anchor:
                    expanded[anchor] = total - started
            if total > MAX_VALUES:
                raise refuse(
                    event,
                    f"more than {MAX_VALUES} values (counting what aliases repeat); a spec needs far fewer",
                )
    finally:
        loader.dispose()


def _index(
    node: yaml.Node, path: PathT, positions: Positions, problems: list[YamlProblem], seen: set[int]
) -> None:
    if id(node) in seen:  # anchors/aliases can make the graph recursive
        return
    seen.add(id(node))
    positions.values.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        names: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            if key in names:
                line, col = _pos(key_node)
                problems.append(YamlProblem(line, col, (*path, key), f"duplicate key '{key}'"))
            names.add(key)
            child = (*path, key)
            positions.keys.setdefault(child, _pos(key_node))
            _index(value_node, child, positions, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), positions, problems, seen)
