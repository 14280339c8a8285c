"""A rich progress bar per epoch (on stderr), or nothing when progress is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EpochProgress:
    def __init__(self, enabled: bool, description: str, total: int,
                 completed: int = 0) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self.completed = completed
        self._bar: Any = None

    def __enter__(self) -> Callable[[float], None]:
        if not self.enabled:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                             TimeElapsedColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=False)
        self._bar.start()
        task_id = self._bar.add_task(self.description, total=self.total,
                                     completed=self.completed, loss=float("nan"))
        return lambda loss: self._bar.update(task_id, advance=1, loss=loss)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
