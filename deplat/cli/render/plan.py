"""How ``deplat plan`` shows a plan: one table per site of the resources it would create."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from deplat.cli import render

if TYPE_CHECKING:
    from deplat.plan import SitePlan
    from deplat.sites import SiteResult

MAX_VALUE = 100


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested inputs as ``(dotted.path[0], value)`` leaves; a list of plain values stays one line."""
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key in sorted(value):
            if key in ("description", "__defaults", "labels", "tags") or value[key] in (None, [], {}):
                continue
            out += flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ",".join(str(v) for v in value))]
        out = []
        for i, item in enumerate(value):
            leaves = flatten(item)
            if isinstance(item, dict) and all("." not in k and "[" not in k for k, _ in leaves):
                # a flat record (a firewall rule, a disk): one line
                out.append((f"{prefix}[{i}]", " ".join(f"{k}={v}" for k, v in leaves)))
            else:
                out += [(f"{prefix}[{i}].{k}" if k else f"{prefix}[{i}]", v) for k, v in leaves]
        return out
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    return [(prefix, str(value))]


def properties_text(props: dict[str, Any]) -> str:
    return "\n".join(f"{key}={_value(text)}" for key, text in flatten(props))


def print_plans(console: Console, plans: list[SitePlan]) -> None:
    for i, plan in enumerate(plans):
        if i:
            console.print()
        head = f"[bold]{escape(plan.site)}[/] ({plan.provider}, {plan.role})"
        if plan.kind == "local":
            console.print(head)
        else:
            console.print(head + f": {len(plan.resources)} resources to create")
            # a list, not a table: at 80 columns a table would cut types, names and values
            for r in plan.resources:
                console.print(f"  [green]+[/] [bold]{escape(r.kind)}[/]  {escape(r.name)}")
                for line in properties_text(r.key_properties()).splitlines():
                    console.print(f"      {escape(line)}")
            shown = {k: v for k, v in plan.outputs.items() if v is not None}
            if shown:
                outs = ", ".join(f"{k}={v}" for k, v in shown.items())
                console.print(f"  [dim]outputs (placeholders until deployed):[/] {escape(outs)}")
        for note in plan.notes:
            console.print(f"  {escape(note)}")


def print_previews(console: Console, results: list[SiteResult]) -> None:
    rows = []
    for r in results:
        changes = ", ".join(f"{op} {n}" for op, n in sorted(r.changes.items()) if n) or "no changes"
        state = "ok" if r.ok else f"failed ({r.error_class or 'error'})"
        rows.append([r.site, state, changes, r.error or ""])
    console.print(render.table("preview", ["site", "result", "changes", "error"], rows))
