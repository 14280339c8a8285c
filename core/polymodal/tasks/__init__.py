"""Task contract and the core tasks (classification, regression)."""

from polymodal.tasks.base import Task

__all__ = ["Task"]
