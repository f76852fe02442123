"""Everything deplat shows a person or a pipeline: rich tables and messages, or JSON.

Core code never prints; the CLI hands what the core returned (or the events it emitted) to the
functions here. With ``--json`` every command writes exactly one JSON document to stdout (or, for
long-running commands, one JSON object per line). rich is imported when the first console or
table is made, so that printing JSON costs none of it.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, SpecError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def make_console(*, no_color: bool = False, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(
        stderr=stderr,
        no_color=no_color,
        highlight=False,
        soft_wrap=True,
        emoji=False,
    )


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str, sort_keys=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(dump_json(obj) + "\n")
    sys.stdout.flush()


def print_json_line(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def error_document(err: DeplatError) -> dict[str, Any]:
    doc: dict[str, Any] = {"ok": False, "error": err.message}
    if err.hint:
        doc["hint"] = err.hint
    if isinstance(err, SpecError):
        doc["problems"] = [p.to_dict() for p in err.problems]
    gaps = getattr(err, "gaps", None)  # deplat.preflight.MissingInputs
    if gaps:
        doc["missing"] = [g.to_dict() for g in gaps]
    return doc


def print_error(console: Console, err: DeplatError) -> None:
    """One clear message: for a spec, every problem on its own line, located."""
    from rich.markup import escape

    if isinstance(err, SpecError):
        console.print(f"[bold red]error:[/] {escape(err.message)}")
        for problem in err.problems:
            console.print(f"  {escape(str(problem))}")
    else:
        console.print(f"[bold red]error:[/] {escape(err.message)}")
    if err.hint:
        console.print(f"  [dim]hint:[/] {escape(err.hint)}")


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else escape(str(v)) for v in row))
    return t
