"""Results of a benchmark run: sections of tables and targets, printed as text and saved as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])


@dataclass
class Target:
    """A target and whether this run met it (None: not measured in this run)."""

    goal: str
    figure: str
    met: bool | None
    why: str = ""

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "MISSED", None: "n/a"}[self.met]


@dataclass
class Section:
    """One benchmark's result: what was measured, against which baseline, and the figures."""

    name: str
    title: str
    measured: str = ""
    baseline: str = ""
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0


def render_table(table: Table) -> str:
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        # first column left-aligned (a name), the figures right-aligned
        parts = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [table.title, line(table.columns), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in table.rows]
    return "\n".join(out)


def render(sections: list[Section]) -> str:
    out: list[str] = []
    for section in sections:
        out.append("=" * 100)
        out.append(f"{section.title}   [{section.name}, {section.seconds:.1f} s]")
        if section.skipped:
            out.append(section.skipped)
            continue
        if section.error:
            out.append(f"CRASHED: {section.error}")
            continue
        if section.measured:
            out.append(f"measured: {section.measured}")
        if section.baseline:
            out.append(f"baseline: {section.baseline}")
        for table in section.tables:
            out.append("")
            out.append(render_table(table))
        if section.targets:
            out.append("")
            for target in section.targets:
                why = f"  ({target.why})" if target.why else ""
                out.append(f"target {target.verdict:6} {target.goal}: {target.figure}{why}")
        for note in section.notes:
            out.append(f"note: {note}")
    out.append("=" * 100)
    return "\n".join(out)


def write_json(path: Path, run: dict[str, Any], sections: list[Section]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**run, "sections": [asdict(s) | _verdicts(s) for s in sections]}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def _verdicts(section: Section) -> dict[str, Any]:
    return {"targets": [asdict(t) | {"verdict": t.verdict} for t in section.targets]}


def mb(n: float) -> str:
    """Bytes as MB (10^6) with sensible precision."""
    value = n / 1e6
    return (
        f"{value:.0f} MB"
        if value >= 100
        else f"{value:.1f} MB"
        if value >= 1
        else f"{value:.2f} MB"
    )


def kb(n: float) -> str:
    return f"{n / 1e3:,.0f} KB" if n >= 10e3 else f"{n / 1e3:.1f} KB"


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "-"
    value = a / b
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"
