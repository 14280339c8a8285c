"""The hooks a polymodal plugin can implement.

Every hook here is documented in docs/hooks.md; tests/core/test_docs.py fails when one is not.
Registration hooks receive a ``register`` callback rather than returning values, so that the
plugin manager knows which plugin registered which name and can refuse duplicates.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("polymodal")
hookimpl = pluggy.HookimplMarker("polymodal")


@hookspec
def register_encoders(register: Any) -> None:
    """Register encoders, one per input modality.

    Called once per process, when the registry is first needed (listing, spec validation,
    model assembly). Call ``register(name, factory, modality=..., description=...)`` once per
    encoder. ``factory`` is a callable or a ``"module:attr"`` string resolved only when the
    encoder is built, so that listing components imports no torch. The factory is called as
    ``factory(input_spec, context)`` and returns an ``polymodal.encoders.Encoder``.
    Return value: ignored.
    """


@hookspec
def register_fusions(register: Any) -> None:
    """Register fusion modules that combine the encoders' outputs.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called as
    ``factory(input_dims: dict[str, int], **options)`` and returns a ``polymodal.fusions.Fusion``
    (an ``nn.Module`` with ``output_dim`` whose ``forward(outputs, present)`` returns a
    ``FusedOutput``). Return value: ignored.
    """


@hookspec
def register_tasks(register: Any) -> None:
    """Register tasks: a head, its loss, its metrics and the decoding of its outputs.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called as
    ``factory(task_spec)`` and returns a ``polymodal.tasks.Task``. Return value: ignored.
    """


@hookspec
def register_readers(register: Any) -> None:
    """Register data readers, each for a file format.

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, extensions=[".csv", ...], description=...)``; the factory is
    called as ``factory(path)`` and returns a list of records (``dict[str, Any]``).
    Readers are chosen by file extension. Return value: ignored.
    """


@hookspec
def register_scenarios(register: Any) -> None:
    """Register named applications (``domain.verb``, e.g. ``nlp.sentiment``).

    Called once per process, when the registry is first needed. Call
    ``register(name, factory, description=...)``; the factory is called with no arguments and
    returns a ``polymodal.scenario.Scenario`` holding the default spec, the embedded demo data
    and, optionally, the scenario's own fit/predict. Return value: ignored.
    """


@hookspec
def register_commands(cli: Any) -> None:
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
