"""Printing results: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats replaced by None: JSON has no such numbers, and
    ``NaN`` in output breaks every strict JSON parser downstream."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN/Infinity); values JSON lacks are written as strings."""
    return json.dumps(finite(obj), indent=indent, default=str, allow_nan=False)


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
