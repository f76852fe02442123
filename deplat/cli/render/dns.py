"""How the traffic switch is shown: what each DNS provider serves, and per-provider results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from deplat.cli import render

if TYPE_CHECKING:
    from deplat.dns.switch import ProviderAnswer, SwitchReport

_OUTCOME_STYLE = {"switched": "green", "already": "green", "conflict": "yellow", "failed": "red"}


def status_document(
    answers: list[ProviderAnswer], split: dict[str, dict[str, str]], names: list[str]
) -> dict[str, Any]:
    return {
        "ok": all(a.ok for a in answers),
        "agree": not split,
        "names": names,
        "providers": [a.to_dict() for a in answers],
        "disagreements": split,
    }


def print_status(
    console: Console, answers: list[ProviderAnswer], split: dict[str, dict[str, str]], names: list[str]
) -> None:
    if not answers:
        console.print("no DNS providers in the spec (add a dns: section)")
        return
    rows: list[list[Any]] = []
    for answer in answers:
        if not answer.ok:
            rows.append(
                [answer.provider, answer.kind, "-", "-", "-", "-", f"{answer.error_class}: {answer.error}"]
            )
            continue
        for name in names:
            served = answer.records.get(name)
            if served is None:
                continue
            rows.append(
                [
                    answer.provider,
                    answer.kind,
                    name,
                    " ".join(served.ipv4) or "-",
                    " ".join(served.ipv6) or "-",
                    served.ttl if served.ttl is not None else "-",
                    "",
                ]
            )
    console.print(
        render.table("DNS providers", ["provider", "kind", "name", "A", "AAAA", "TTL", "error"], rows)
    )
    if split:
        for name, views in split.items():
            seen = "; ".join(f"{p}: {v}" for p, v in views.items())
            console.print(f"[yellow]disagree[/] on {escape(name)}: {escape(seen)}")
    elif all(a.ok for a in answers):
        console.print("[green]all DNS providers agree[/]")


def print_report(console: Console, report: SwitchReport, title: str) -> None:
    rows = [
        [r.name, r.kind, r.outcome, r.error_class or "", f"{r.seconds:.3f}", r.message]
        for r in report.results
    ]
    if not rows:
        console.print("no DNS providers in the spec (add a dns: section)")
        return
    table = render.table(title, ["provider", "kind", "outcome", "class", "seconds", "message"], rows)
    console.print(table)
    for r in report.results:
        if r.outcome in ("conflict", "failed"):
            style = _OUTCOME_STYLE[r.outcome]
            console.print(f"[{style}]{r.outcome}[/] {escape(r.name)}: {escape(r.message)}")
