"""Load ``deplat.yaml`` into a ``Spec``, reporting every problem at once with file:line:column.

Three passes, all of whose problems are collected before anything is raised:
1. YAML syntax and duplicate keys (``positions.parse``);
2. the typed model (pydantic): unknown keys with "did you mean", wrong types, bad values;
3. the rules that span sections (``rules.check``) and each provider's own options.

A spec validated once is kept in ``.deplat/cache/`` (``deplat.spec.cache``): the same bytes read
again skip all three passes (and the import of the YAML parser).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from deplat.errors import InputError, Problem, SpecError
from deplat.spec.model import Spec
from deplat.spec.source import read_spec_bytes

if TYPE_CHECKING:
    from deplat.spec.positions import PathT, Positions

DEFAULT_FILE = "deplat.yaml"


def format_path(path: PathT) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# A message echoes parts of the input; hostile input must not turn one line into megabytes.
MAX_MESSAGE = 300


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text) - limit + 30} more characters)"


class Reporter:
    """Collects problems for one file, placing each by its path in the document. Messages (which
    may echo values from the file) are clipped to ``MAX_MESSAGE`` characters."""

    def __init__(self, file: str, positions: Positions) -> None:
        self.file = file
        self.positions = positions
        self.problems: list[Problem] = []
        self._seen: set[Problem] = set()

    def at(self, path: PathT, message: str, *, key: bool = False) -> None:
        line, col = self.positions.of_key(path) if key else self.positions.of_value(path)
        problem = Problem(self.file, line, col, clip(format_path(path), 120), clip(message))
        if problem not in self._seen:  # two checks that find the same thing say it once
            self._seen.add(problem)
            self.problems.append(problem)


def load_spec(path: str | Path = DEFAULT_FILE) -> Spec:
    """Read, parse and validate a spec file. Raises ``SpecError`` listing every problem.

    Only a regular file of at most ``MAX_SPEC_BYTES`` is read (a FIFO or ``/dev/zero`` is refused
    before reading), so bad input fails at once with one message."""
    file = Path(path)
    shown = str(path)
    raw = read_spec_bytes(file, shown)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    from deplat.spec import cache

    spec = cache.load(file, raw)
    if spec is None:
        spec = load_text(text, shown)
        spec._source = file.resolve()
        cache.save(file, raw, spec)
    spec._source = file.resolve()
    return spec


def load_text(text: str, file: str = DEFAULT_FILE) -> Spec:
    """Validate spec text; ``file`` is the name used in messages."""
    from deplat.spec.positions import YamlSyntaxError, parse

    try:
        data, positions, yaml_problems = parse(text)
    except YamlSyntaxError as exc:
        raise SpecError([Problem(file, exc.line, exc.column, "", clip(exc.message))]) from None
    report = Reporter(file, positions)
    for yp in yaml_problems:
        report.problems.append(
            Problem(file, yp.line, yp.column, clip(format_path(yp.path), 120), clip(yp.message))
        )
    if not isinstance(data, dict):
        what = "an empty file" if data is None else f"a {type(data).__name__}"
        report.at((), f"a spec is a mapping of keys (app, services, domain, sites, ...), not {what}")
        raise SpecError(report.problems)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        for err in _merge_typos(exc.errors()):
            _report_model_error(report, err)
        raise SpecError(report.problems) from None
    from deplat.spec import rules  # after the model: rules assume a well-typed spec

    rules.check(spec, report)
    if report.problems:
        raise SpecError(report.problems)
    return spec


def _merge_typos(errors: list[Any]) -> list[Any]:
    """Drop "missing 'image'" when the same mapping has an unknown key that is a typo of it:
    the "did you mean" on the typo already says everything."""
    suggested: set[PathT] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = tuple(err["loc"])
            hint = difflib.get_close_matches(str(loc[-1]), _allowed_keys(loc[:-1]), n=1, cutoff=0.6)
            if hint:
                suggested.add((*loc[:-1], hint[0]))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in suggested)]


# Friendlier words for the spec's patterns than the regular expressions themselves.
_PATTERNS = {
    "^[a-z][a-z0-9-]{0,40}[a-z0-9]$|^[a-z]$": "should be lower-case letters, digits and '-', "
    "starting with a letter and at most 42 long",
    "^[A-Z_][A-Z0-9_]*$": "should be an environment variable name such as DB_PASSWORD",
    "^/": "should be an absolute path starting with '/'",
}
_TYPES = {
    "bool_parsing": "should be true or false",
    "bool_type": "should be true or false",
    "int_parsing": "should be a whole number",
    "int_type": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_parsing": "should be a number",
    "float_type": "should be a number",
    "string_type": "should be a string",
    "list_type": "should be a list",
    "dict_type": "should be a mapping of keys",
    "model_type": "should be a mapping of keys",
    "model_attributes_type": "should be a mapping of keys",
}


def _got(err: Any) -> str:
    value = err.get("input")
    if isinstance(value, dict | list):
        return f" (got a {'mapping' if isinstance(value, dict) else 'list'})"
    text = repr(value)
    return f" (got {text if len(text) <= 40 else text[:37] + '...'})"


def _report_model_error(report: Reporter, err: Any) -> None:
    loc: PathT = tuple(err["loc"])
    kind = err["type"]
    if "[key]" in loc:  # an invalid mapping key, e.g. a service named "Web"
        cut = loc.index("[key]")
        pattern = err.get("ctx", {}).get("pattern")
        why = _PATTERNS.get(pattern, _plain(err["msg"]))
        report.at(loc[:cut], f"invalid name '{loc[cut - 1]}': {why}", key=True)
        return
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        msg = f"unknown key '{key}'"
        msg += f" (did you mean '{hint[0]}'?)" if hint else f"; known keys: {', '.join(allowed)}"
        report.at(loc, msg, key=True)
    elif kind == "missing":
        report.at(loc[:-1], f"missing required key '{loc[-1]}'")
    elif kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        report.at(loc, f"'{err.get('input')}' is not one of {expected}")
    elif kind == "string_pattern_mismatch" and err["ctx"]["pattern"] in _PATTERNS:
        report.at(loc, _PATTERNS[err["ctx"]["pattern"]] + _got(err))
    elif kind in _TYPES:
        report.at(loc, _TYPES[kind] + _got(err))
    elif kind == "literal_error":
        report.at(loc, f"should be {err['ctx']['expected']}{_got(err)}")
    else:
        report.at(loc, _plain(err["msg"]))


def _plain(msg: str) -> str:
    """Pydantic's messages, made to read as deplat's own."""
    msg = msg.replace("Input should be", "should be").replace("String should", "should")
    msg = msg.replace("Dictionary should", "should").replace("List should", "should")
    return msg.replace("Value error, ", "")


def _allowed_keys(loc: PathT) -> list[str]:
    """The field names of the model at ``loc`` (a path in the data), for "did you mean"."""
    model: Any = Spec
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        else:
            model = _container_item(model)
        model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _container_item(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    return args[-1] if args else annotation


def _unwrap(annotation: Any) -> Any:
    """``Foo | None`` and ``list[Foo]`` / ``dict[str, Foo]`` are walked through on the next step;
    here only Optional is removed."""
    args = getattr(annotation, "__args__", ())
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation
