"""The hooks a polymodal plugin can implement.

Every hook here is documented in docs/hooks.md; tests/core/test_docs.py fails when one is not.
Registration hooks receive a ``register`` callback rather than returning values, so that the
plugin manager knows which plugin registered which name and can refuse duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pluggy

if TYPE_CHECKING:  # the contracts import torch; annotations only
    import click

    from polymodal.encoders.base import BuildContext, Encoder
    from polymodal.fusions import Fusion
    from polymodal.records import Record
    from polymodal.scenario import Scenario
    from polymodal.spec import InputSpec, TaskSpec
    from polymodal.tasks.base import Task

hookspec = pluggy.HookspecMarker("polymodal")
hookimpl = pluggy.HookimplMarker("polymodal")

# A factory may be given as a "module:attr" string, imported only when the component is built.
EncoderFactory: TypeAlias = "Callable[[InputSpec, BuildContext], Encoder] | str"
FusionFactory: TypeAlias = "Callable[..., Fusion] | str"
TaskFactory: TypeAlias = "Callable[[TaskSpec], Task] | str"
ReaderFactory: TypeAlias = "Callable[[str], list[Record]] | str"
ScenarioFactory: TypeAlias = "Callable[[], Scenario] | str"


class RegisterEncoder(Protocol):
    """The ``register`` callback of ``register_encoders``."""

    def __call__(self, name: str, factory: EncoderFactory, *, modality: str,
                 description: str = "", options: Any = None) -> None: ...


class RegisterFusion(Protocol):
    """The ``register`` callback of ``register_fusions``."""

    def __call__(self, name: str, factory: FusionFactory, *, description: str = "",
                 options: Any = None) -> None: ...


class RegisterTask(Protocol):
    """The ``register`` callback of ``register_tasks``."""

    def __call__(self, name: str, factory: TaskFactory, *, description: str = "",
                 options: Any = None) -> None: ...


class RegisterReader(Protocol):
    """The ``register`` callback of ``register_readers``."""

    def __call__(self, name: str, factory: ReaderFactory, *,
                 extensions: Sequence[str] = (), description: str = "") -> None: ...


class RegisterScenario(Protocol):
    """The ``register`` callback of ``register_scenarios``."""

    def __call__(self, name: str, factory: ScenarioFactory, *,
                 description: str = "") -> None: ...


class RegisterModality(Protocol):
    """The ``register`` callback of ``register_modalities``."""

    def __call__(self, name: str, *, wire: str = "value", value_type: Any = None,
                 media_types: Sequence[str] = (), samples: Sequence[Any] | None = None,
                 description: str = "", expects: str = "",
                 schema: dict[str, Any] | None = None) -> None: ...


@hookspec
def register_modalities(register: RegisterModality) -> None:
    """Register modalities: the kinds of input value and how each travels in a request.

    Called once per process, when the registry is first needed, before the other register
    hooks. Call ``register(name, wire=..., value_type=..., media_types=..., samples=...,
    description=..., expects=...)`` once per modality. ``wire`` is ``value`` (a JSON scalar),
    ``object`` (a JSON object), ``list`` (a JSON array) or ``binary`` (a file: uploaded in a
    multipart form or sent as ``{"base64": ...}``, with ``media_types`` it accepts).
    ``value_type`` is a Python type (a pydantic model, ``dict[str, float]``, ``str`` ...) or a
    ``"module:attr"`` string naming one: requests are validated against it (a 422 names the
    field) and OpenAPI shows its JSON Schema. ``samples`` are two example values that
    ``polymodal export`` traces with; ``expects`` says in words what a value is. ``null`` is
    always a valid (missing) value. Return value: ignored.
    """


@hookspec
def register_encoders(register: RegisterEncoder) -> None:
    """Register encoders, one per input modality.

    Called once per process, when the registry is first needed (listing, spec validation,
    model assembly). Call ``register(name, factory, modality=..., description=...)`` once per
    encoder. ``factory`` is a callable or a ``"module:attr"`` string resolved only when the
    encoder is built, so that listing components imports no torch. The factory is called as
    ``factory(input_spec, context)`` and returns an ``polymodal.encoders.Encoder``.
    Return value: ignored.
    """


@hookspec
def register_fusions(register: RegisterFusion) -> None:
    """Register fusion modules that combine the encoders' outputs.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called as
    ``factory(input_dims: dict[str, int], **options)`` and returns a ``polymodal.fusions.Fusion``
    (an ``nn.Module`` with ``output_dim`` whose ``forward(outputs, present)`` returns a
    ``FusedOutput``). Return value: ignored.
    """


@hookspec
def register_tasks(register: RegisterTask) -> None:
    """Register tasks: a head, its loss, its metrics and the decoding of its outputs.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called as
    ``factory(task_spec)`` and returns a ``polymodal.tasks.Task``. Return value: ignored.
    """


@hookspec
def register_readers(register: RegisterReader) -> None:
    """Register data readers, each for a file format.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, extensions=[".csv", ...], description=...)``; the factory is
    called as ``factory(path)`` and returns a list of records (``dict[str, Any]``).
    Readers are chosen by file extension. Return value: ignored.
    """


@hookspec
def register_scenarios(register: RegisterScenario) -> None:
    """Register named applications (``domain.verb``, e.g. ``nlp.sentiment``).

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called with no arguments and
    returns a ``polymodal.scenario.Scenario`` holding the default spec, the embedded demo data
    and, optionally, the scenario's own fit/predict. Return value: ignored.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or a command group to the ``polymodal`` CLI.

    Called once when the CLI starts, with the root ``click.Group``; call ``cli.add_command``.
    Keep heavy imports (torch, transformers) inside the command bodies: ``polymodal --help``
    must not import torch. Return value: ignored.
    """


@hookspec
def on_training_event(event: str, state: dict[str, Any]) -> None:
    """Observe the training lifecycle.

    Called by the trainer (on rank 0 only under torch.distributed) with ``event`` one of
    ``train_start``, ``step_end`` (after every optimizer step; keep it cheap), ``epoch_end``,
    ``checkpoint_saved`` and ``train_end``. ``state`` holds at least ``epoch``, ``step`` and
    ``out_dir``; ``step_end`` adds ``batch`` (batches done in the epoch), ``epoch_end`` adds
    ``metrics`` (the validation metrics of that epoch) and ``checkpoint_saved`` adds ``path``.
    The state is a copy: changing it changes nothing. Return value: ignored.
    """
