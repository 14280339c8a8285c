"""``polymodal export``: a trained model as ONNX or TorchScript, checked against itself.

The predictor of each scenario says what its graph is (``BasePredictor.export_graph``): the
module over the tensors its ``preprocess`` makes, returning raw outputs (logits, embeddings,
next-token scores); the Python steps around it (tokenizing, beam search, span decoding) stay
with the runtime, and the sidecar ``PATH.json`` says what it needs for them (input names in
order, outputs, labels, the processors' directory). A spec model's graph takes the collated
tensors plus one presence mask per input.

Every export is verified before it is kept: the exported graph runs on a batch of other
sizes than the one it was traced with, and must match the PyTorch model to ``atol``. A model
whose forward cannot be captured (Python control flow on values, unsupported operators)
gets a one-line error saying why, and nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from polymodal.errors import ArtifactError
from polymodal.predictor import ExportGraph
from polymodal.records import Record

FORMATS = ("onnx", "torchscript")


class FlatModel(torch.nn.Module):
    """The model with flat tensor arguments (exporters want positional tensors)."""

    def __init__(self, model: Any, layout: list[tuple[str, str]], fields: list[str]) -> None:
        super().__init__()
        self.model = model
        self.layout = layout  # (input name, tensor key) for each tensor argument
        self.fields = fields  # input names, one presence mask each after the tensors

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs: dict[str, dict[str, torch.Tensor]] = {}
        for (name, key), tensor in zip(self.layout, tensors, strict=False):
            inputs.setdefault(name, {})[key] = tensor
        present = dict(zip(self.fields, tensors[len(self.layout):], strict=True))
        return self.model(inputs, present)


def sample_records(spec: Any) -> list[Record]:
    """Two records from the sample values the inputs' modalities register; a modality with
    none (files) needs ``--data``."""
    from polymodal.modalities import modality_named

    records: list[Record] = [{}, {}]
    for inp in spec.inputs:
        samples = modality_named(inp.modality).samples
        if samples is None:
            raise ArtifactError(f"export needs example records for the {inp.modality} input "
                                f"{inp.name!r}: pass --data FILE")
        for record, value in zip(records, samples[:2], strict=True):
            for field in inp.fields:
                record[field] = value
    return records


def _flatten(model: Any, records: list[Record]) -> tuple[list[tuple[str, str]],
                                                          list[torch.Tensor]]:
    from polymodal.data.collate import model_collator

    batch = model_collator(model, with_target=False)(records)
    layout = [(name, key) for name, tensors in batch["inputs"].items() for key in tensors]
    tensors = [batch["inputs"][name][key] for name, key in layout]
    tensors += [batch["present"][inp.name] for inp in model.spec.inputs]
    return layout, tensors


def spec_graph(model: Any, manifest: dict[str, Any], model_dir: Path,
               records: list[Record] | None) -> ExportGraph:
    """The graph of a spec model: collated tensors and presence masks -> the head's raw
    output, traced on the first record and checked on all."""
    records = records or sample_records(model.spec)
    if len(records) < 2:
        raise ArtifactError("export needs at least two example records")
    fields = [inp.name for inp in model.spec.inputs]
    with _padded_to_export_lengths(model) as lengths:
        trace_layout, trace_args = _flatten(model, records[:1])
        check_layout, check_args = _flatten(model, records)
    if trace_layout != check_layout:
        raise ArtifactError("the model's inputs change shape between batches; cannot export")
    from polymodal.modalities import modality_named

    # A file input's tensors (pixels), and those padded to an encoder's export length, keep
    # their traced size beyond the batch axis, but for the axes their processor says vary
    # (the frames of log-mel features).
    files = {inp.name for inp in model.spec.inputs if modality_named(inp.modality).binary}
    fixed = {f"{name}.{key}": [axis for axis in range(1, tensor.dim()) if axis not in
                               model.encoders[name].processor.variable_axes.get(key, [])]
             for (name, key), tensor in zip(trace_layout, trace_args, strict=False)
             if name in files or name in lengths}
    return ExportGraph(module=FlatModel(model, trace_layout, fields).eval(),
                       inputs=_names(trace_layout, fields), outputs=["output"],
                       trace=trace_args, check=check_args, fixed_axes=fixed,
                       sidecar={"task": manifest["spec"]["task"],
                                "labels": getattr(model.task, "labels", None),
                                "processors": str(model_dir.resolve() / "processors"),
                                # A runtime pads these inputs to these lengths (pad_to).
                                "token_lengths": lengths})


@contextlib.contextmanager
def _padded_to_export_lengths(model: Any) -> Iterator[dict[str, int]]:
    """Pad the inputs whose encoders trace a constant token length (``export_length``)."""
    lengths = {name: encoder.export_length for name, encoder in model.encoders.items()
               if encoder.export_length is not None}
    for name, length in lengths.items():
        model.encoders[name].processor.pad_to = length
    try:
        yield lengths
    finally:
        for name in lengths:
            model.encoders[name].processor.pad_to = None


def _names(layout: list[tuple[str, str]], fields: list[str]) -> list[str]:
    return [f"{name}.{key}" for name, key in layout] + [f"{f}.present" for f in fields]


def _export_onnx(module: torch.nn.Module, args: list[torch.Tensor], names: list[str],
                 outputs: list[str], path: Path, fixed: dict[str, list[int]],
                 batches: dict[str, str] | None = None) -> None:
    batches = batches or {}
    dynamic = {name: {i: f"dim{i}_{j}" for i in range(arg.dim())
                      if i not in fixed.get(name, [])}
               for j, (name, arg) in enumerate(zip(names, args, strict=True))}
    for name, axes in dynamic.items():  # inputs share the batch dimension unless named
        if 0 in axes:
            axes[0] = batches.get(name, "batch")
    for name in outputs:
        dynamic[name] = {0: batches.get(name, "batch")}
    torch.onnx.export(module, tuple(args), str(path), input_names=names,
                      output_names=outputs, dynamic_axes=dynamic, dynamo=False,
                      opset_version=17)


def _run_onnx(path: Path, names: list[str], args: list[torch.Tensor]
              ) -> list[torch.Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # unused inputs are pruned
    feed = {n: a.numpy() for n, a in zip(names, args, strict=True) if n in wanted}
    return [torch.from_numpy(output) for output in session.run(None, feed)]


def _outputs(value: Any) -> list[torch.Tensor]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _run(fmt: str, path: Path, names: list[str], args: list[torch.Tensor]
         ) -> list[torch.Tensor]:
    if fmt == "onnx":
        return _run_onnx(path, names, args)
    with warnings.catch_warnings():  # torch.jit is deprecated, still the TorchScript runtime
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return _outputs(module(*args))


# Model directories whose model is no torch module (an ALS factorisation, a vector index).
NOT_TORCH = {"recsys": "an implicit ALS factorisation", "index": "a vector index"}


@contextlib.contextmanager
def _no_fast_path() -> Iterator[None]:
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def check_exportable(model_dir: str | Path) -> None:
    """Refuse, in one line and before loading anything, a model directory whose model is no
    torch module."""
    from polymodal.artifacts import read_manifest

    manifest = read_manifest(model_dir)
    kind = manifest.get("kind")
    scenario = (manifest.get("spec") or {}).get("scenario") or kind
    if kind in NOT_TORCH:
        raise ArtifactError(f"cannot export {model_dir}: a {scenario} model is "
                            f"{NOT_TORCH[kind]}, not a torch module (ONNX and TorchScript "
                            "hold torch graphs)")


def export_model(model_dir: str | Path, fmt: str, out: str | Path,
                 records: list[Record] | None = None, atol: float = 1e-4) -> dict[str, Any]:
    """Export, verify against the PyTorch model, then move into place. Returns a summary
    with the largest difference seen on the verification batch."""
    import polymodal

    if fmt not in FORMATS:
        raise ArtifactError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    check_exportable(model_dir)
    out = Path(out)
    predictor: Any = polymodal.load(model_dir, device="cpu")
    if getattr(predictor, "module", True) is None:  # an engine outside torch (pocketsphinx)
        scenario = getattr(predictor, "scenario", None) or "this"
        raise ArtifactError(f"cannot export {model_dir}: a {scenario} model is not a torch "
                            "module (ONNX and TorchScript hold torch graphs)")
    graph = predictor.export_graph(records)
    module = graph.module.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(temp_name)
    try:
        try:
            # Tracer warnings are what the verification below checks for real. Fused
            # inference kernels (nn.MultiheadAttention's fast path) have no ONNX form.
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), \
                    _no_fast_path():
                warnings.simplefilter("ignore")
                if fmt == "onnx":
                    _export_onnx(module, graph.trace, graph.inputs, graph.outputs, temp,
                                 graph.fixed_axes, graph.batch_axes)
                else:
                    traced = torch.jit.trace(module, tuple(graph.trace), check_trace=False)
                    torch.jit.save(traced, str(temp))
            exported = _run(fmt, temp, graph.inputs, graph.check)
        except ArtifactError:
            raise
        except Exception as exc:  # exporters raise many types; the message says why
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"cannot export {model_dir} to {fmt}: {reason}") from None
        with torch.inference_mode():
            expected = _outputs(module(*graph.check))
        difference = max(float((got.float() - want.float()).abs().max())
                         for got, want in zip(exported, expected, strict=True))
        if not difference <= atol:
            raise ArtifactError(
                f"cannot export {model_dir} to {fmt}: the exported graph differs from the "
                f"model by {difference:.2e} (> {atol:g}) on a batch of another shape - its "
                "forward depends on values or shapes in a way tracing cannot capture")
        temp.replace(out)
    finally:
        temp.unlink(missing_ok=True)
    sidecar = {"format": fmt, "inputs": graph.inputs, "outputs": graph.outputs,
               **graph.sidecar, "verified_max_abs_diff": difference}
    out.with_name(out.name + ".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return {"path": str(out), **sidecar}
