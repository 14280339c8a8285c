"""What the image models that predict classes over space (detection, segmentation) share
around their networks: a fit on the core Trainer (validation by the predictor's own
metric, held-out scores beside baselines, the directory with its class list) and a load.
Each scenario gives how to build its network, collator and predictor from the encoder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from polymodal.plugin import FitRequest, Record

if TYPE_CHECKING:
    from polymodal.plugin import BasePredictor
    from polymodal_vision.encoders import ImageEncoder

CLASSES_FILE = "classes.json"
# encoder -> (module whose forward(pixels, targets) is the loss, collator, predictor)
Build = Callable[["ImageEncoder"], tuple[nn.Module, Any, "BasePredictor"]]
Baseline = Callable[[list[Record], list[Record]], dict[str, Any]]


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics (per-class breakdowns stay in metrics.json)."""
    return {k: v for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def fit_class_map_model(request: FitRequest, *, kind: str, classes: list[str], build: Build,
                        baselines: dict[str, Baseline]) -> dict[str, Any]:
    """Fit with the core Trainer (best epoch by the spec's monitored validation metric),
    score the held-out records and the baselines on them, write the model directory."""
    from polymodal.plugin import (
        BuildContext,
        ModuleSteps,
        build_encoder,
        fit_steps,
        get_hub,
        pick_device,
        seed_everything,
        split_validation,
        training_directory,
        write_run_files,
    )
    from polymodal_vision.retrieve import save_module

    spec = request.spec
    torch_device = pick_device(request.device)
    seed_everything(spec.train.seed)
    fit, val = split_validation(request.train, spec.validation, spec.train.seed)
    encoder = cast("ImageEncoder", build_encoder(spec.image, BuildContext(
        device=torch_device, hub=get_hub())))
    module, collate, predictor = build(encoder)
    module.to(torch_device)
    predictor.device = torch_device
    steps = ModuleSteps(
        module, collate=collate, loss=lambda net, batch: net(batch[0], batch[1]),
        identity={**spec.model_dump(mode="json", exclude={"train"}), "classes": classes},
        batch_size=lambda batch: len(batch[0]),
        evaluate=lambda items: headline(predictor.evaluate(items)),
        monitor=spec.train.monitor or "loss")
    with training_directory(request.out_dir, resume=request.resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, fit, val, work, device=torch_device,
                           resume=request.resume, progress=request.progress)
        metrics: dict[str, Any] = {"train_images": len(fit), "validation_images": len(val),
                                   "classes": classes}
        comparisons = None
        if request.test:
            metrics["test"] = predictor.evaluate(request.test)
            metrics["baselines"] = {name: baseline(fit, request.test)
                                    for name, baseline in baselines.items()}
            rows = {"model": headline(metrics["test"])}
            rows.update({name: headline(m) for name, m in metrics["baselines"].items()})
            comparisons = {f"held-out {kind}": rows}
        save_module(module, encoder.processor, work)
        (work / CLASSES_FILE).write_text(json.dumps(classes))
        write_run_files(work, kind=kind, spec=spec.model_dump(mode="json"), metrics=metrics,
                        result=result, train_records=fit, comparisons=comparisons)
    return {"best_epoch": result.best_epoch, **metrics}


def load_class_map_model(directory: str | Path, spec_model: type, what: str,
                         network: Callable[[Any, ImageEncoder, list[str]], nn.Module],
                         device: str | None = None
                         ) -> tuple[Any, nn.Module, list[str], dict[str, Any], torch.device]:
    """(spec, network with its weights on the device, classes, manifest, device) of a
    directory ``fit_class_map_model`` wrote."""
    from polymodal.plugin import (
        ArtifactError,
        BuildContext,
        build_encoder,
        get_hub,
        parse_model_spec,
        pick_device,
        read_manifest,
    )
    from polymodal_vision.retrieve import load_module_files, load_weights

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec: Any = parse_model_spec(spec_model, manifest["spec"])
    torch_device = pick_device(device)
    image_state, state = load_module_files(directory, what)
    try:
        classes = json.loads((directory / CLASSES_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable {CLASSES_FILE}: {exc}") from None
    encoder = cast("ImageEncoder", build_encoder(spec.image, BuildContext(
        device=torch_device, hub=get_hub(), processor_state=image_state)))
    module = network(spec, encoder, classes)
    load_weights(module, state, directory)
    return spec, module.to(torch_device), classes, manifest, torch_device
