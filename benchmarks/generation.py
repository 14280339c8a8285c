"""vision.generate against plain diffusers, and its quality against the sampling steps.

- train: optimizer steps/s of the core Trainer over the default UNet and batch (one epoch of
  the embedded digits) against a hand-written diffusers training loop over the same UNet,
  batches and AdamW (target >= 0.95).
- sample: images/s of our DDIM sampling (25 steps) against diffusers' ``DDIMPipeline`` on
  the same UNet (unconditional: the pipeline passes no class labels) and batch
  (target >= 0.95).
- quality MODEL_DIR: class accuracy, Frechet ratios and diversity of a trained generator at
  10, 25, 50 and 250 DDIM steps (EMA on and off: run it on a model trained with
  ``--set train.ema=null`` too).

Usage: python benchmarks/generation.py train|sample [--repeats 3]
       python benchmarks/generation.py quality runs/demo/vision.generate
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch


def _spec():  # type: ignore[no-untyped-def]
    from polymodal_vision.generate import GenerateSpec

    return GenerateSpec()


def bench_train(repeats: int) -> None:
    from polymodal.plugin import ModuleSteps, fit_steps, seed_everything
    from polymodal_vision.datasets import digits, split
    from polymodal_vision.generate import build_unet, diffusion_loss, image_tensor, noise_schedule

    spec = _spec()
    spec.train.epochs = 1
    spec.train.ema = None
    train, _ = split(digits(), 0.2)
    labels = sorted({r["label"] for r in train})
    index = {label: i for i, label in enumerate(labels)}
    schedule = noise_schedule(spec)
    size, batch = spec.image_size, spec.train.batch_size

    def collate(rows):  # type: ignore[no-untyped-def]
        return (image_tensor([r["image"] for r in rows], size),
                torch.tensor([index[r["label"]] for r in rows]))

    batches = [collate(train[i:i + batch]) for i in range(0, len(train), batch)]
    steps_per_epoch = len(batches)

    def ours() -> float:
        seed_everything(0)
        unet = build_unet(spec, len(labels))
        steps = ModuleSteps(unet, collate=collate,
                            loss=lambda m, b: diffusion_loss(m, b, schedule, len(labels), 0.1),
                            identity={}, batch_size=lambda b: len(b[1]))
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            fit_steps(spec.train, steps, train, [], Path(work), device=torch.device("cpu"),
                      progress=False)
            return time.perf_counter() - start

    def hand() -> float:
        seed_everything(0)
        unet = build_unet(spec, len(labels))
        optimizer = torch.optim.AdamW(unet.parameters(), lr=spec.train.lr, weight_decay=0.0)
        start = time.perf_counter()
        unet.train()
        for images, classes in batches:
            noise = torch.randn_like(images)
            t = torch.randint(0, schedule.config.num_train_timesteps, (len(images),))
            drop = torch.rand(classes.shape) < 0.1
            classes = torch.where(drop, torch.full_like(classes, len(labels)), classes)
            loss = torch.nn.functional.mse_loss(
                unet(schedule.add_noise(images, noise, t), t, class_labels=classes).sample,
                noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"ours": [], "hand": []}
    for _ in range(repeats):  # alternated, so a slower stretch of the machine hits both
        times["ours"].append(ours())
        times["hand"].append(hand())
    ours_s = sorted(times["ours"])[repeats // 2]
    hand_s = sorted(times["hand"])[repeats // 2]
    print(f"training, {steps_per_epoch} steps of batch {batch} at {size} px, median of "
          f"{repeats}:")
    print(f"  polymodal Trainer     {steps_per_epoch / ours_s:7.2f} steps/s")
    print(f"  hand-written loop     {steps_per_epoch / hand_s:7.2f} steps/s")
    print(f"  ratio {hand_s / ours_s:.3f} (target >= 0.95)")


def bench_sample(repeats: int, batch: int = 64) -> None:
    from diffusers import DDIMPipeline, UNet2DModel

    from polymodal_vision.generate import sample, sampler_for

    spec = _spec()
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=spec.image_size, in_channels=1, out_channels=1,
                       layers_per_block=1, block_out_channels=tuple(spec.widths),
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8).eval()
    pipeline = DDIMPipeline(unet=unet, scheduler=sampler_for(spec, "ddim"))
    pipeline.set_progress_bar_config(disable=True)

    def ours() -> float:
        start = time.perf_counter()
        sample(unet, spec, {}, list(range(batch)), steps=25, guidance=1.0)
        return time.perf_counter() - start

    def theirs() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            pipeline(batch_size=batch, num_inference_steps=25, eta=0.0, output_type="np",
                     generator=torch.Generator().manual_seed(0))
        return time.perf_counter() - start

    ours(), theirs()  # warm-up
    ours_s = sorted(ours() for _ in range(repeats))[repeats // 2]
    theirs_s = sorted(theirs() for _ in range(repeats))[repeats // 2]
    print(f"DDIM sampling, 25 steps, batch {batch}, median of {repeats}:")
    print(f"  polymodal sample()    {batch / ours_s:7.1f} images/s")
    print(f"  diffusers DDIMPipeline {batch / theirs_s:6.1f} images/s")
    print(f"  ratio {theirs_s / ours_s:.3f} (target >= 0.95)")


def bench_quality(model_dir: str) -> None:
    from polymodal import load
    from polymodal_vision.datasets import digits, split

    generator = load(model_dir)
    _, test = split(digits(), 0.2)
    base = generator.spec.steps
    print("| DDIM steps | class accuracy | Frechet / floor (judge) | Frechet / floor "
          "(ImageNet) | diversity / real | seconds |")
    print("|---|---|---|---|---|---|")
    for steps in (10, 25, 50, 250):
        generator.spec.steps = steps
        start = time.perf_counter()
        m = generator.evaluate(test)
        print(f"| {steps} | {m['class_accuracy']:.3f} | {m['frechet_ratio']:.2f} | "
              f"{m['frechet_imagenet_ratio']:.2f} | {m['diversity_ratio']:.2f} | "
              f"{time.perf_counter() - start:.0f} |")
    generator.spec.steps = base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["train", "sample", "quality"])
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "train":
        bench_train(args.repeats)
    elif args.what == "sample":
        bench_sample(args.repeats)
    else:
        if not args.model_dir:
            sys.exit("quality needs a model directory")
        bench_quality(args.model_dir)


if __name__ == "__main__":
    main()
