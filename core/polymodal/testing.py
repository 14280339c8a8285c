"""``polymodal.testing``: the conformance kit a plugin author runs in their own tests.

Each check builds the component from the registry, as a spec would, and raises
``ConformanceError`` (an ``AssertionError``: pytest shows it as a failure) with a message
that says which promise of the contract the component breaks:

- ``check_encoder``: output shapes and masks, a missing value, batch-size independence (a
  record's vector must not change with the batch around it: padding must be masked), a
  device move (when a GPU is there), autocast, and the processor-state + weights round trip;
- ``check_fusion``: every subset of present inputs, a row with none, and that an absent
  input's values change nothing;
- ``check_task``: a finite, differentiable loss, metrics, JSON-able decoding, and the state
  round trip;
- ``check_scenario``: the whole lifecycle as a user drives it: quick train, evaluate and
  predict through the CLI, load, serve through an in-process HTTP client (OpenAPI shows
  every input's schema), and export where the model is a torch module.

``run_cli`` runs the CLI in a fresh process; ``make_distribution`` writes a minimal
installed distribution (a plugin) on a path of its own, for tests that put it on
``PYTHONPATH``. Every check is deterministic (seeded) and runs on the CPU in seconds.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ConformanceError", "check_encoder", "check_fusion", "check_scenario",
           "check_task", "make_distribution", "run_cli"]


class ConformanceError(AssertionError):
    """A component that breaks its contract; the message says how."""


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``polymodal ARGS...`` in a fresh process, as a user would. ``env`` adds to the
    environment; a ``PYTHONPATH`` in it goes in front of the current one."""
    full_env = {**os.environ, **(env or {})}
    if env and "PYTHONPATH" in env and os.environ.get("PYTHONPATH"):
        full_env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"],
                                                  os.environ["PYTHONPATH"]])
    return subprocess.run([sys.executable, "-m", "polymodal.cli.main", *args],
                          capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout)


def make_distribution(root: str | Path, name: str, module_source: str,
                      entry_point: str | None = None, version: str = "1.2.3") -> Path:
    """A minimal installed distribution on ``root``: the module ``name`` with
    ``module_source``, and dist-info whose ``polymodal`` entry point loads it. Put ``root``
    on ``PYTHONPATH`` (``run_cli(..., env={"PYTHONPATH": str(root)})``) to install it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(module_source)
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[polymodal]\n{entry_point or name} = {name}\n")
    return root


def _fail(component: str, message: str) -> None:
    raise ConformanceError(f"{component}: {message}")


def _max_diff(a: Any, b: Any) -> float:
    return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0


# ---------------------------------------------------------------- encoders


def check_encoder(name: str, values: Sequence[Any] | None = None, *,
                  options: dict[str, Any] | None = None, source: str | None = None,
                  atol: float = 1e-4) -> None:
    """Check a registered encoder on ``values`` (default: its modality's samples; give at
    least two, of different sizes where sizes vary, so that padding is exercised)."""
    import torch

    from polymodal.encoders.base import BuildContext, EncoderOutput
    from polymodal.model import build_encoder
    from polymodal.registry import get_registry
    from polymodal.spec import InputSpec

    component = f"encoder {name!r}"
    registry = get_registry()
    entry = registry.get("encoder", name)
    modality = entry.modality or "any"
    if values is None:
        samples = registry.modality(modality).samples if entry.modality else None
        values = list(samples or [])
    values = list(values)
    if len(values) < 2:
        _fail(component, "give check_encoder at least two example values")
    torch.manual_seed(0)
    spec = InputSpec(name="field", modality=modality, encoder=name, source=source,
                     options=options or {})
    encoder = build_encoder(spec, BuildContext(values=[*values, None])).eval()
    processor = encoder.processor
    batch_values = [*values, None]  # the last record has the value missing
    with torch.inference_mode():
        output = encoder(processor(batch_values))
    if not isinstance(output, EncoderOutput):
        _fail(component, f"forward returned {type(output).__name__}, not an EncoderOutput")
    _check_output_shapes(component, output, len(batch_values), int(encoder.output_dim))
    if not torch.isfinite(output.pooled.float()).all():
        _fail(component, "the pooled vectors hold NaN or infinity (a missing value is the "
                         "last record)")
    _check_batch_independence(component, encoder, values, output, atol)
    _check_autocast(component, encoder, values)
    if torch.cuda.is_available():
        _check_device_move(component, encoder, values, output, atol)
    _check_round_trip(component, spec, encoder, batch_values, output, atol)


def _check_output_shapes(component: str, output: Any, batch: int, width: int) -> None:
    pooled = tuple(output.pooled.shape)
    if pooled != (batch, width):
        _fail(component, f"pooled is {list(pooled)}; a batch of {batch} with output_dim "
                         f"{width} needs [{batch}, {width}]")
    if output.tokens is None:
        return
    tokens = tuple(output.tokens.shape)
    if len(tokens) != 3 or tokens[0] != batch or tokens[2] != width:
        _fail(component, f"tokens is {list(tokens)}; it must be [{batch}, T, {width}]")
    mask = output.token_mask
    if mask is None or tuple(mask.shape) != tokens[:2] or mask.dtype != __import__(
            "torch").bool:
        shape = None if mask is None else f"{list(mask.shape)} {mask.dtype}"
        _fail(component, f"token_mask is {shape}; tokens need a bool mask [{batch}, "
                         f"{tokens[1]}]")
    places = getattr(output, "token_positions", None)
    if places is not None and tuple(places.shape) != (tokens[1], 2):
        _fail(component, f"token_positions is {list(places.shape)}; {tokens[1]} tokens need "
                         f"[{tokens[1]}, 2] (x, y)")


def _check_batch_independence(component: str, encoder: Any, values: list[Any],
                              output: Any, atol: float) -> None:
    import torch

    for index, value in enumerate(values):
        with torch.inference_mode():
            alone = encoder(encoder.processor([value]))
        diff = _max_diff(alone.pooled[0], output.pooled[index])
        if diff > atol:
            _fail(component, f"record {index}'s pooled vector changes with the batch around "
                             f"it (max difference {diff:.2e}); padding must not reach the "
                             "output: use the mask")
        if alone.tokens is not None and output.tokens is not None:
            assert alone.token_mask is not None
            length = int(alone.token_mask[0].sum())
            diff = _max_diff(alone.tokens[0, :length], output.tokens[index, :length])
            if diff > atol:
                _fail(component, f"record {index}'s token states change with the batch "
                                 f"around it (max difference {diff:.2e}): use the mask")


def _check_autocast(component: str, encoder: Any, values: list[Any]) -> None:
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        output = encoder(encoder.processor(values))
    if not output.pooled.is_floating_point() or not torch.isfinite(output.pooled.float()).all():
        _fail(component, "under bf16 autocast the pooled vectors are not finite floats")


def _check_device_move(component: str, encoder: Any, values: list[Any], output: Any,
                       atol: float) -> None:
    import torch

    moved = encoder.to("cuda")
    try:
        batch = {k: v.to("cuda") for k, v in moved.processor(values).items()}
        with torch.inference_mode():
            on_gpu = moved(batch)
        if on_gpu.pooled.device.type != "cuda":
            _fail(component, "after .to('cuda') the output is on "
                             f"{on_gpu.pooled.device}: a tensor is not a parameter or buffer")
        diff = _max_diff(on_gpu.pooled.cpu(), output.pooled[: len(values)])
        if diff > max(atol, 1e-3):
            _fail(component, f"the output on the GPU differs from the CPU's by {diff:.2e}")
    finally:
        encoder.to("cpu")


def _check_round_trip(component: str, spec: Any, encoder: Any, values: list[Any],
                      output: Any, atol: float) -> None:
    import torch

    from polymodal.encoders.base import BuildContext
    from polymodal.model import build_encoder

    state = encoder.processor.state()
    try:
        state = json.loads(json.dumps(state))
    except TypeError as exc:
        _fail(component, f"processor.state() is not JSON ({exc})")
    with tempfile.TemporaryDirectory() as tmp:
        encoder.processor.save_files(Path(tmp))
        restored = build_encoder(spec, BuildContext(processor_state=state,
                                                    processor_dir=Path(tmp))).eval()
        try:
            restored.load_state_dict(encoder.state_dict())
        except RuntimeError as exc:
            _fail(component, "a rebuilt encoder does not take the saved weights: "
                             f"{str(exc).splitlines()[0]}")
        with torch.inference_mode():
            again = restored(restored.processor(values))
    diff = _max_diff(again.pooled, output.pooled)
    if diff > atol:
        _fail(component, f"rebuilt from its processor state and weights it gives other "
                         f"vectors (max difference {diff:.2e})")


# ---------------------------------------------------------------- fusions


def check_fusion(name: str, *, options: dict[str, Any] | None = None,
                 input_dims: dict[str, int] | None = None, atol: float = 1e-5) -> None:
    """Check a registered fusion on random encoder outputs (pooled vectors and token
    sequences) for every subset of present inputs, the empty one included."""
    import torch

    from polymodal.encoders.base import EncoderOutput
    from polymodal.fusions import FusedOutput
    from polymodal.options import build_with_options
    from polymodal.registry import get_registry

    component = f"fusion {name!r}"
    dims = input_dims or {"first": 8, "second": 6, "third": 4}
    factory = get_registry().get("fusion", name).resolve()
    torch.manual_seed(0)
    fusion = build_with_options(factory, options or {}, "fusion.options", component, dims,
                                skip=1).eval()
    fields = list(dims)
    rows = list(itertools.product([False, True], repeat=len(fields)))  # every subset
    batch, length = len(rows), 5
    present = {f: torch.tensor([row[i] for row in rows]) for i, f in enumerate(fields)}
    lengths = torch.tensor([1 + i % length for i in range(batch)])
    mask = torch.arange(length)[None, :] < lengths[:, None]

    def outputs() -> dict[str, Any]:
        return {f: EncoderOutput(pooled=torch.randn(batch, d),
                                 tokens=torch.randn(batch, length, d), token_mask=mask)
                for f, d in dims.items()}

    first = outputs()
    with torch.inference_mode():
        fused = fusion(first, present)
    if not isinstance(fused, FusedOutput):
        _fail(component, f"forward returned {type(fused).__name__}, not a FusedOutput")
    produced = [("pooled", fused.pooled, int(fusion.output_dim))] if fused.pooled is not None \
        else []
    for field, tensor in (fused.per_field or {}).items():
        produced.append((f"per_field[{field}]", tensor, int(fusion.output_dims[field])))
    if not produced:
        _fail(component, "the FusedOutput has neither pooled nor per_field vectors")
    for label, tensor, width in produced:
        if tuple(tensor.shape) != (batch, width):
            _fail(component, f"{label} is {list(tensor.shape)}; expected [{batch}, {width}]")
        if not torch.isfinite(tensor).all():
            _fail(component, f"{label} holds NaN or infinity (row 0 has no input present)")
    if fused.tokens is not None and (fused.tokens.shape[0] != batch
                                     or fused.tokens.shape[-1] != fusion.token_dim):
        _fail(component, f"tokens is {list(fused.tokens.shape)}; expected [{batch}, T, "
                         f"{fusion.token_dim}]")
    # The values of an absent input must change nothing (the token field is the sequence
    # being read, whatever its presence).
    token_field = getattr(fusion, "token_field", None)
    for field in fields:
        if field == token_field:
            continue
        changed = dict(first)
        changed[field] = outputs()[field]
        with torch.inference_mode():
            again = fusion(changed, present)
        absent = ~present[field]
        for label, tensor, _ in produced:
            if label == f"per_field[{field}]":  # a late fusion's own vector: masked later
                continue
            other = again.pooled if label == "pooled" else again.per_field[label[10:-1]]
            diff = _max_diff(tensor[absent], other[absent])
            if diff > atol:
                _fail(component, f"the values of input {field!r} change {label} where it "
                                 f"is absent (max difference {diff:.2e}); use `present`")


# ---------------------------------------------------------------- tasks


def check_task(name: str, targets: Sequence[Any], *, options: dict[str, Any] | None = None,
               dims: Any = None, batch: dict[str, Any] | None = None,
               tokens: int = 6) -> None:
    """Check a registered task on raw ``targets`` (one per record) with random features of
    ``dims`` (a ``FusedDims``; default pooled width 16; ``tokens`` states a record for a
    task that reads tokens). A task that ``needs_alignment`` also needs ``batch`` (the
    collated inputs with ``alignment`` and ``raw``), one that ``needs_records`` a batch with
    its ``records``."""
    import torch

    from polymodal.fusions import FusedDims
    from polymodal.registry import get_registry
    from polymodal.spec import TaskSpec

    component = f"task {name!r}"
    targets = list(targets)
    spec = TaskSpec(name=name, target="target", options=options or {})
    registry = get_registry()
    task = registry.build("task", name, spec)
    if task.needs_alignment and batch is None:
        _fail(component, "this task needs token alignment: give check_task the collated "
                         "batch (or check it through check_scenario)")
    if getattr(task, "needs_records", False) and (batch is None or "records" not in batch):
        _fail(component, "this task needs its records: give check_task a batch with "
                         "\"records\" (or check it through check_scenario)")
    task.fit(targets)
    dims = dims or FusedDims(pooled=16, tokens=16)
    torch.manual_seed(0)
    head = task.build_head(dims)
    size = len(targets)
    if task.reads == "tokens":
        features = torch.randn(size, tokens, int(dims.tokens or 16))
    else:
        features = torch.randn(size, int(dims.pooled or 16))
    batch = dict(batch or {"present": {"field": torch.ones(size, dtype=torch.bool)}})
    batch["target"] = task.collate_targets(targets, batch)
    head.train()
    outputs = head(features)
    loss = task.loss(outputs, batch)
    if loss.dim() != 0 or not torch.isfinite(loss):
        _fail(component, f"the loss is {loss!r}; it must be a finite scalar")
    loss.backward()
    grads = [p.grad for p in head.parameters() if p.requires_grad]
    if not grads or all(g is None or not g.abs().sum() for g in grads):
        _fail(component, "the loss does not reach the head's parameters (no gradient)")
    head.eval()
    with torch.inference_mode():
        outputs = head(features)
    metrics = task.metrics()
    task.update_metrics(metrics, outputs, batch)
    computed = task.finalize_metrics(metrics.compute())
    _json(component, "finalize_metrics", computed)
    if task.monitor != "loss" and task.monitor not in computed:
        _fail(component, f"monitor {task.monitor!r} is not among its metrics "
                         f"({', '.join(computed)})")
    decoded = task.decode(outputs, batch)
    if len(decoded) != size:
        _fail(component, f"decode gave {len(decoded)} predictions for {size} records")
    _json(component, "decode", decoded)
    state = json.loads(_json(component, "state()", task.state()))
    restored = registry.build("task", name, spec)
    restored.load_state(state)
    if restored.decode(outputs, batch) != decoded:
        _fail(component, "restored from its state it decodes the same outputs differently")


def _json(component: str, what: str, value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _fail(component, f"{what} is not JSON ({exc})")
        raise  # unreachable: _fail raises


# ---------------------------------------------------------------- scenarios


def check_scenario(name: str, workdir: str | Path, *, env: dict[str, str] | None = None,
                   overrides: Sequence[str] = (), limit_batches: int | None = 2
                   ) -> dict[str, Any]:
    """The lifecycle of a registered scenario on its embedded data, quick: train, evaluate
    and predict through the CLI, load, serve in process, export. Returns what it measured
    (``metrics``, ``predictions``, ``exported``). A spec trained by the core Trainer trains
    ``limit_batches`` batches an epoch (``train.limit_batches``; None: all of them): the
    kit checks the lifecycle, and the scenario's own tests what it learns."""
    from polymodal.scenario import load_scenario

    component = f"scenario {name!r}"
    workdir = Path(workdir)
    domain, _, verb = name.partition(".")
    out = workdir / "model"
    scenario = load_scenario(name)
    overrides = [*_smoke_overrides(scenario, limit_batches), *overrides]
    sets = [arg for item in overrides for arg in ("--set", item)]
    trained = run_cli(domain, verb, "train", "--quick", "--out", str(out), "--json", *sets,
                      env=env)
    if trained.returncode != 0:
        _fail(component, f"train --quick failed: {_last_line(trained.stderr)}")
    if json.loads(trained.stdout).get("out") != str(out) or not (out / "polymodal.yaml").exists():
        _fail(component, "train did not write the model directory it reports")
    _check_artifact(component, out)

    demo = scenario.load_demo()  # type: ignore[misc]
    # As many held-out records as the scenario's quick run tests on, at most 12: a smoke
    # check (a scenario whose scoring is slow, such as a synthesized voice transcribed by
    # Whisper, says so by a small quick_records).
    held_out = _write_jsonl(workdir / "held_out.jsonl",
                            demo.test[:max(2, min(12, scenario.quick_records // 2))])
    evaluated = run_cli(domain, verb, "evaluate", str(out), "--data", str(held_out), "--json",
                        env=env)
    if evaluated.returncode != 0:
        _fail(component, f"evaluate failed: {_last_line(evaluated.stderr)}")
    metrics = json.loads(evaluated.stdout)
    if not metrics:
        _fail(component, "evaluate reported no metrics")

    examples = demo.examples or demo.test[:2]
    examples_file = _write_jsonl(workdir / "examples.jsonl", examples)
    predicted = run_cli(domain, verb, "predict", str(out), "--input", str(examples_file),
                        "--device", "cpu", env=env)
    if predicted.returncode != 0:
        _fail(component, f"predict failed: {_last_line(predicted.stderr)}")
    lines = predicted.stdout.strip().splitlines()
    if len(lines) != len(examples):
        _fail(component, f"predict gave {len(lines)} lines for {len(examples)} records")

    served = _check_served(component, out, examples)
    exported = run_cli("export", str(out), "--format", "onnx", "--out",
                       str(workdir / "model.onnx"), "--data", str(held_out), env=env)
    if exported.returncode == 0:
        sidecar = json.loads((workdir / "model.onnx.json").read_text())
        if not sidecar.get("verified_max_abs_diff", 1.0) <= 1e-4:
            _fail(component, "the exported graph does not match the model")
    elif "not a torch module" not in exported.stderr:
        _fail(component, f"export failed: {_last_line(exported.stderr)}")
    return {"metrics": metrics, "predictions": [json.loads(line) for line in lines],
            "served": served, "exported": exported.returncode == 0}


def _smoke_overrides(scenario: Any, limit_batches: int | None) -> list[str]:
    """``train.limit_batches`` when the scenario's quick spec has the core TrainSpec."""
    from polymodal.scenario import scenario_spec
    from polymodal.spec import TrainSpec

    if limit_batches is None:
        return []
    train = getattr(scenario_spec(scenario, quick=True), "train", None)
    return [f"train.limit_batches={limit_batches}"] if isinstance(train, TrainSpec) else []


def _check_artifact(component: str, out: Path) -> None:
    """What every model directory records: versions, the data's fingerprint, a card."""
    import yaml

    manifest = yaml.safe_load((out / "polymodal.yaml").read_text())
    versions = manifest.get("versions") or {}
    if "polymodal" not in versions or "torch" not in versions:
        _fail(component, f"polymodal.yaml records no package versions ({versions})")
    if not str(manifest.get("data_fingerprint", "")).startswith("sha256:"):
        _fail(component, "polymodal.yaml records no data fingerprint")
    card = out / "card.md"
    if not card.exists() or "## Provenance" not in card.read_text():
        _fail(component, "the model directory has no card.md with its provenance")


def _check_served(component: str, model_dir: Path, examples: list[Any]) -> list[Any]:
    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app

    with TestClient(create_app([model_dir], ServeSettings(), device="cpu")) as client:
        models = client.get("/v1/models").json()["models"]
        served = models[0]
        schema = client.get("/openapi.json").json()
        path = schema["paths"].get(f"/v1/models/{served['name']}/predict")
        if path is None:
            _fail(component, "OpenAPI does not describe the predict endpoint")
        body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
        fields = body["properties"]["records"]["items"]["properties"]
        for item in served["inputs"]:
            if item["name"] not in fields:
                _fail(component, f"OpenAPI does not describe input {item['name']!r}")
        wires = {item["name"]: item.get("wire", "value") for item in served["inputs"]}
        records = [{k: _wire(v, wires[k]) for k, v in record.items() if k in wires}
                   for record in examples]
        response = client.post(f"/v1/models/{served['name']}/predict",
                               json={"records": records})
        if response.status_code != 200:
            _fail(component, f"the server answered {response.status_code}: {response.text}")
        predictions = response.json()["predictions"]
        if len(predictions) != len(records):
            _fail(component, f"the server gave {len(predictions)} predictions for "
                             f"{len(records)} records")
        bad = client.post(f"/v1/models/{served['name']}/predict", json={"records": [[]]})
        if bad.status_code != 422 or "error" not in bad.json():
            _fail(component, "a malformed record is not a 422 with a JSON error")
        return list(predictions)


def _wire(value: Any, wire: str) -> Any:
    """A record value as a JSON client sends it: a file (bytes, or the path of a file the
    client has) as base64."""
    if wire == "binary" and isinstance(value, str | Path):
        value = Path(value).read_bytes()
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    def default(value: Any) -> Any:
        if isinstance(value, bytes):
            raise TypeError("bytes")
        return value.tolist()

    lines = []
    for record in records:
        try:
            lines.append(json.dumps(record, default=default))
        except TypeError:  # file values: written beside the records, named by path
            lines.append(json.dumps(_files_as_paths(path.parent, record), default=default))
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _files_as_paths(directory: Path, record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if isinstance(value, bytes):
            target = directory / f"file-{abs(hash(value)) % 10**12}.bin"
            target.write_bytes(value)
            out[key] = str(target)
        else:
            out[key] = value
    return out


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
