"""Library exceptions. The CLI turns any ``PolymodalError`` into one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PolymodalError(Exception):
    """Base class for every error a user can cause and fix (bad input, bad spec, bad path)."""


class SpecError(PolymodalError):
    """The YAML spec is malformed or names something that does not exist."""


class DataError(PolymodalError):
    """A data file is missing, empty, malformed, or lacks a column the spec needs."""


class FieldError(DataError):
    """A record's field holds a value the model cannot take; ``index`` and ``field`` say
    where (the server answers 422 naming ``records[index].field``)."""

    def __init__(self, message: str, index: int, field: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class RequestTooLarge(DataError):
    """One request asks for more work than a served model allows (pixels, records): 413."""


class ArtifactError(PolymodalError):
    """A model directory is missing, incomplete or corrupt."""


class PluginError(PolymodalError):
    """A plugin misbehaved: a duplicate name, or a component that cannot be built."""


class TrainingInterrupted(PolymodalError):
    """SIGINT/SIGTERM arrived during training; a checkpoint to resume from was saved."""


class NonFiniteLoss(PolymodalError):
    """The training loss became NaN or infinite: the run is stopped and nothing is written."""


class UnknownNameError(PolymodalError):
    """A name (encoder, fusion, task, column, scenario ...) that is not known."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name``, best first (difflib's ratio)."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)


def unknown(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """Build the one-line error for an unknown name, suggesting the closest valid ones."""
    choices = sorted(set(choices))
    near = closest(name, choices)
    if near:
        hint = "did you mean " + ", ".join(repr(c) for c in near) + "?"
    elif choices:
        hint = "valid: " + ", ".join(choices[:12]) + (" ..." if len(choices) > 12 else "")
    else:
        hint = "none are registered"
    return UnknownNameError(f"unknown {kind} {name!r}; {hint}")
