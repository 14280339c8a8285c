"""Printing results: JSON for machines, rich tables for people."""

from __future__ import annotations

import sys
from typing import Any

from polymodal.strict_json import to_json


def emit_json(obj: Any) -> None:
    sys.stdout.write(to_json(obj, indent=2) + "\n")


def emit_jsonl(rows: list[Any]) -> None:
    for row in rows:
        sys.stdout.write(to_json(row) + "\n")


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    rows = [[k, v] for k, v in metrics.items() if isinstance(v, int | float)]
    print_table(title, ["metric", "value"], rows)
