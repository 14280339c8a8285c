"""A rich progress bar (on stderr) per training epoch, or over a prediction's batches; nothing
when progress is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EpochProgress:
    def __init__(self, enabled: bool, description: str, total: int,
                 completed: int = 0, loss: bool = True) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self.completed, self.loss = completed, loss
        self._bar: Any = None

    def __enter__(self) -> Callable[..., None]:
        """``advance(loss)``: one step done (the running loss shown when ``loss``)."""
        if not self.enabled:
            return _nothing
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        if self.loss:
            columns.append(TextColumn("loss {task.fields[loss]:.4f}"))
        self._bar = Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=False)
        self._bar.start()
        task_id = self._bar.add_task(self.description, total=self.total,
                                     completed=self.completed, loss=float("nan"))
        bar = self._bar

        def advance(loss: float = float("nan")) -> None:
            bar.update(task_id, advance=1, loss=loss)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()


def _nothing(loss: float = 0.0) -> None:
    return None
