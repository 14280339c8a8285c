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


def print_comparison(title: str, columns: dict[str, dict[str, Any]]) -> None:
    """Metrics side by side (the model and its baselines): the numeric metrics of the
    first column that any other column has too."""
    first = next(iter(columns.values()), {})
    keys = [k for k, v in first.items() if isinstance(v, int | float) and k != "n"
            and any(k in other for other in list(columns.values())[1:])]
    rows = [[k, *(column.get(k, "") for column in columns.values())] for k in keys]
    print_table(title, ["metric", *columns], rows)
