"""Training ``vision.text2image``: the retrieval judge, then the prompt encoder and the
conditioned UNet with the core Trainer (``generate_fit.fit_diffusion``), then the measured
quality and the sample grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import DataError, DemoData, FitRequest, Record, Scenario
from polymodal_vision.generate import image_tensor, noise_schedule, timestep_draw
from polymodal_vision.text2image import (
    PromptConditioner,
    PromptGeneratorModel,
    PromptStateCache,
    Text2ImageNet,
    Text2ImageSpec,
    build_conditioned_unet,
    build_prompt_encoder,
    save_text2image,
    text2image_loss,
)

GRID_PROMPTS = ("a large red circle", "a large blue square", "a large green triangle",
                "a large yellow circle", "a small red square",
                "a large blue circle left of a large yellow triangle",
                "a large green square above a small red circle")


def fit_text2image(request: FitRequest) -> dict[str, Any]:
    from polymodal.plugin import ModuleSteps, pick_device, seed_everything, split_validation
    from polymodal_vision.generate_fit import fit_diffusion
    from polymodal_vision.prompt_quality import train_prompt_judge

    spec: Text2ImageSpec = request.spec
    target = spec.target
    train = [r for r in request.train if r.get("image") is not None
             and isinstance(r.get(target), str) and r[target].strip()]
    if not train:
        raise DataError(f"no record has an \"image\" and a non-empty {target!r} to train on")
    device = pick_device(request.device)
    seed_everything(spec.train.seed)
    fit, val = split_validation(train, spec.validation, spec.train.seed)
    encoder = build_prompt_encoder(spec, device, values=[r[target] for r in fit])
    prompt = PromptConditioner(encoder, spec.pooled, frozen=spec.text.frozen)
    net = Text2ImageNet(build_conditioned_unet(spec, encoder.output_dim), prompt).to(device)
    schedule, draw = noise_schedule(spec), timestep_draw(spec)
    # A frozen encoder's states are computed once per distinct prompt, not every epoch.
    texts = (PromptStateCache(prompt, [r[target] for r in fit]) if spec.text.frozen
             else encoder.processor)

    def collate(rows: list[Record]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return (image_tensor([r["image"] for r in rows], spec.image_size, channels=3),
                texts([r[target] for r in rows]))

    def loss(module: torch.nn.Module, batch: tuple[torch.Tensor, dict[str, torch.Tensor]]
             ) -> torch.Tensor:
        return text2image_loss(module, batch, schedule, spec.caption_dropout,
                               spec.snr_gamma, draw)

    steps = ModuleSteps(net, collate=collate, loss=loss,
                        identity=spec.model_dump(mode="json", exclude={"train"}),
                        batch_size=lambda batch: len(batch[0]))

    def judge(directory: Path) -> dict[str, Any]:
        return train_prompt_judge(spec, fit, request.test, directory, request.device,
                                  request.progress)

    return fit_diffusion(
        request, fit, val, device, steps=steps, train_judge=judge,
        save=lambda work: save_text2image(net, spec, work),
        predictor=lambda work: PromptGeneratorModel(spec, net.eval(), device,
                                                    directory=work),
        grid_rows=list(GRID_PROMPTS), kind="text-to-image",
        metrics={"train_images": len(fit)})


def load_scenes_demo() -> DemoData:
    """The synthetic scenes of one or two shapes, every shape named by the caption (of three
    shapes a caption names the two leftmost: the third would teach the generator to add
    shapes no prompt asked for, and the judge to tell a prompt from a scene it describes
    only in part)."""
    from polymodal_vision.datasets import scenes
    from polymodal_vision.pairs import TEST_SCENES, TRAIN_SCENES

    train = scenes("captions", TRAIN_SCENES, seed=0, max_shapes=2)
    test = scenes("captions", TEST_SCENES, seed=1, max_shapes=2)
    return DemoData(train=train, test=test,
                    examples=[{"prompt": prompt, "seed": i}
                              for i, prompt in enumerate(GRID_PROMPTS[:3])],
                    source="synthetic scenes of one or two shapes and their captions (3,000 "
                    "training, 500 held out)")


def text2image_scenario() -> Scenario:
    from polymodal_vision.text2image import load_text2image

    return Scenario(name="vision.text2image", description="prompt -> image: text-conditional "
                    "diffusion with cross-attention (embedded: synthetic scenes)",
                    default_spec=Text2ImageSpec().model_dump(mode="json"),
                    spec_model=Text2ImageSpec, load_demo=load_scenes_demo,
                    fit=fit_text2image, load_model=load_text2image,
                    quick_overrides=["train.epochs=1", "judge_epochs=1", "eval_prompts=8",
                                     "steps=4"],
                    quick_records=200, primary_input="prompt")
