"""YAML that remembers where every key and value came from.

``parse`` turns YAML text into plain Python data plus a ``Positions`` index from a path inside
the document (``("services", "web", "ports", 0)``) to the line and column of that node, so that
validation errors can name ``deplat.yaml:12:9``. Duplicate keys, which YAML loaders silently
accept (the last one wins), are reported as problems here.
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


# libyaml's parser when PyYAML has it (same nodes and marks, several times faster).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str) -> tuple[Any, Positions, list[YamlProblem]]:
    """Parse one YAML document; raise ``YamlSyntaxError`` with its position if it is not YAML."""
    positions = Positions()
    problems: list[YamlProblem] = []
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, positions, problems
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
    _index(node, (), positions, problems, set())
    return data, positions, problems


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
