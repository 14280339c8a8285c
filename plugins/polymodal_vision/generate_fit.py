"""Training ``vision.generate``: the judge classifier, then the denoiser with the core
Trainer, then the measured quality and the sample grid in the model directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import DataError, DemoData, FitRequest, Record, Scenario
from polymodal_vision.generate import (
    DiffusionPredictor,
    GenerateSpec,
    GeneratorModel,
    build_unet,
    diffusion_loss,
    image_tensor,
    load_generator,
    noise_schedule,
    save_generator,
    timestep_draw,
)


def _judge_spec(epochs: int) -> dict[str, Any]:
    """The vision.classify default (small-cnn, 32 px) on the generator's labels."""
    import copy

    from polymodal_vision.classify import SPEC

    spec = copy.deepcopy(SPEC)
    spec["name"] = "generation-judge"
    spec["train"]["epochs"] = epochs
    return spec


def train_judge(train: list[Record], test: list[Record] | None, out_dir: Any,
                target: str, epochs: int, device: str | None, progress: bool
                ) -> dict[str, Any]:
    """A vision.classify model of the real training images: it labels generated ones."""
    from polymodal.plugin import parse_spec, run_training

    spec = _judge_spec(epochs)
    spec["task"]["target"] = "label"
    rows = [{"image": r["image"], "label": str(r[target])} for r in train]
    held_out = [{"image": r["image"], "label": str(r[target])} for r in test or []]
    result = run_training(parse_spec(spec), out_dir, train_records=rows,
                          test_records=held_out or None, device=device, progress=progress)
    return dict(result.metrics.get("test") or result.metrics.get("validation") or {})


def fit_diffusion(request: FitRequest, fit: list[Record], val: list[Record],
                  device: torch.device, *,
                  steps: Any, train_judge: Callable[[Path], dict[str, Any]],
                  save: Callable[[Path], None],
                  predictor: Callable[[Path], DiffusionPredictor],
                  grid_rows: list[Any], kind: str, metrics: dict[str, Any]
                  ) -> dict[str, Any]:
    """What every diffusion scenario's training does around its own network: the judge
    (trained on the real training records into ``judge/``), the core Trainer over
    ``steps``, the generator saved, its quality measured on the test records, the sample
    grid (one row per value of ``grid_rows``) and the run files."""
    from polymodal.plugin import fit_steps, training_directory, write_run_files
    from polymodal_vision.generation_quality import sample_grid

    spec = request.spec
    with training_directory(request.out_dir, resume=request.resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        judge_metrics = train_judge(work / "judge")
        result = fit_steps(spec.train, steps, fit, val, work, device=device,
                           resume=request.resume, progress=request.progress)
        save(work)
        generator = predictor(work)
        metrics = {**metrics, "judge": judge_metrics}
        if request.test:
            metrics["test"] = generator.evaluate(request.test)
        (work / "plots").mkdir(exist_ok=True)
        sample_grid(generator, grid_rows, work / "plots" / "samples.png")
        write_run_files(work, kind=kind, spec=spec.model_dump(mode="json"),
                        metrics=metrics, result=result, train_records=fit,
                        images=["plots/samples.png"])
    return {"best_epoch": result.best_epoch, **metrics}


def fit_generator(request: FitRequest) -> dict[str, Any]:
    from polymodal.plugin import ModuleSteps, pick_device, seed_everything, split_validation

    spec: GenerateSpec = request.spec
    target = spec.target
    train = [r for r in request.train if r.get("image") is not None
             and r.get(target) is not None]
    if not train:
        raise DataError(f"no record has an \"image\" and a {target!r} to train on")
    device = pick_device(request.device)
    seed_everything(spec.train.seed)
    labels = sorted({str(r[target]) for r in train})
    index = {label: i for i, label in enumerate(labels)}
    fit, val = split_validation(train, spec.validation, spec.train.seed)
    unet = build_unet(spec, len(labels)).to(device)
    schedule, draw = noise_schedule(spec), timestep_draw(spec)
    size = spec.image_size

    def collate(rows: list[Record]) -> tuple[torch.Tensor, torch.Tensor]:
        return (image_tensor([r["image"] for r in rows], size),
                torch.tensor([index[str(r[target])] for r in rows]))

    def loss(module: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
             ) -> torch.Tensor:
        return diffusion_loss(module, batch, schedule, len(labels), spec.label_dropout,
                              spec.snr_gamma, draw)

    steps = ModuleSteps(unet, collate=collate, loss=loss,
                        identity={**spec.model_dump(mode="json", exclude={"train"}),
                                  "labels": labels},
                        batch_size=lambda batch: len(batch[1]))

    def judge(directory: Path) -> dict[str, Any]:
        measured = train_judge(fit, request.test, directory, target, spec.judge_epochs,
                               request.device, request.progress)
        return {k: v for k, v in measured.items() if k in ("accuracy", "macro_f1", "n")}

    return fit_diffusion(
        request, fit, val, device, steps=steps, train_judge=judge,
        save=lambda work: save_generator(unet, labels, work),
        predictor=lambda work: GeneratorModel(spec, unet.eval(), labels, device,
                                              directory=work),
        grid_rows=labels, kind="image-generation",
        metrics={"train_images": len(fit), "labels": labels})


def load_digits_demo() -> DemoData:
    from polymodal_vision.datasets import digits, split

    train, test = split(digits(), 0.2)  # the split vision.classify uses
    return DemoData(train=train, test=test, examples=[{"label": str(i), "seed": i}
                                                      for i in range(3)],
                    source="scikit-learn load_digits (1,437 training images, 360 held out)")


def generate_scenario() -> Scenario:
    return Scenario(name="vision.generate", description="label -> image: class-conditional "
                    "diffusion (embedded: digits)",
                    default_spec=GenerateSpec().model_dump(mode="json"),
                    spec_model=GenerateSpec, load_demo=load_digits_demo, fit=fit_generator,
                    load_model=load_generator,
                    quick_overrides=["train.epochs=1", "judge_epochs=1", "eval_per_label=2",
                                     "steps=4"],
                    quick_records=200, primary_input="label")
