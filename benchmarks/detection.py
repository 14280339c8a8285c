"""vision.detect against the same torchvision detector used by hand.

- train: training images/s of the core Trainer over the default detector (one epoch of
  1,000 embedded scenes) against a hand-written torchvision loop over the same model,
  batches and AdamW (target >= 0.95).
- infer MODEL_DIR: images/s of ``polymodal.load(MODEL_DIR).predict`` (what ``polymodal
  predict`` runs) against the same torchvision model called by hand on the same 500 images
  and batch size, each reading its PNGs (target >= 0.95).

Usage: python benchmarks/detection.py train [--repeats 3]
       python benchmarks/detection.py infer runs/demo/vision.detect [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

IMAGES = 1000


def _records(count: int, seed: int) -> list[dict[str, Any]]:
    from polymodal_vision.detection_scenario import object_scenes

    return [{k: r[k] for k in ("image", "boxes", "labels")}
            for r in object_scenes(count, seed=seed)]


def _detector(spec: Any, classes: list[str]) -> Any:
    from polymodal.plugin import BuildContext, build_encoder, get_hub, seed_everything
    from polymodal_vision.detect import Detector

    seed_everything(0)
    encoder = build_encoder(spec.image, BuildContext(device=torch.device("cpu"),
                                                     hub=get_hub()))
    return Detector(spec, encoder, classes), encoder


def bench_train(repeats: int) -> None:
    from polymodal.plugin import ModuleSteps, fit_steps
    from polymodal_vision.detect import DetectionCollator
    from polymodal_vision.detection_scenario import DetectSpec

    spec = DetectSpec()
    spec.train.epochs, spec.flip = 1, False
    classes = ["circle", "square", "triangle"]
    train = _records(IMAGES, seed=0)[:IMAGES]
    batch = spec.train.batch_size

    def ours() -> float:
        detector, encoder = _detector(spec, classes)
        steps = ModuleSteps(detector, collate=DetectionCollator(encoder.processor, classes,
                                                                False),
                            loss=lambda m, b: m(b[0], b[1]), identity={},
                            batch_size=lambda b: len(b[1]))
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            fit_steps(spec.train, steps, train, [], Path(work), device=torch.device("cpu"),
                      progress=False)
            return time.perf_counter() - start

    def hand() -> float:
        detector, encoder = _detector(spec, classes)
        collate = DetectionCollator(encoder.processor, classes, False)
        model = detector.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.train.lr,
                                      weight_decay=spec.train.weight_decay)
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train)).tolist()
        for i in range(0, len(train), batch):
            pixels, targets = collate([train[j] for j in order[i:i + batch]])
            loss = sum(model(list(pixels), targets).values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip or 1e9)
            optimizer.step()
        return time.perf_counter() - start

    _report("training images/s", IMAGES, ours, hand, repeats)


def bench_infer(model_dir: str, repeats: int) -> None:
    import numpy as np
    from PIL import Image

    import polymodal

    records = [{"image": r["image"]} for r in _records(500, seed=1)]
    predictor: Any = polymodal.load(model_dir, device="cpu")
    model, size, batch = predictor.model.model, predictor.model.size, 64

    def ours() -> float:
        start = time.perf_counter()
        predictor.predict(records, batch_size=batch)
        return time.perf_counter() - start

    def hand() -> float:
        start = time.perf_counter()
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(records), batch):
                images = [Image.open(r["image"]).convert("RGB").resize((size, size))
                          for r in records[i:i + batch]]
                pixels = [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 127.5 - 1
                          for im in images]
                for found, image in zip(model(pixels), images, strict=True):
                    scale = torch.tensor([image.width / size, image.height / size] * 2)
                    _ = (found["boxes"] * scale).tolist(), found["labels"].tolist()
        return time.perf_counter() - start

    _report("inference images/s", len(records), ours, hand, repeats)


def _report(what: str, count: int, ours: Any, hand: Any, repeats: int) -> None:
    import gc

    torch.set_num_threads(max(1, torch.get_num_threads()))
    times: dict[str, list[float]] = {"polymodal": [], "by hand": []}
    ours(), hand()  # warm-up, untimed: the first calls of a process pay for kernel set-up
    runs = {"polymodal": ours, "by hand": hand}
    for repeat in range(repeats):
        # interleaved, so machine load hits both alike, and in alternating order (ABBA),
        # so that neither always runs just after the other has freed its memory
        for name in (list(runs) if repeat % 2 == 0 else list(runs)[::-1]):
            gc.collect()
            times[name].append(runs[name]())
    rates = {k: count / statistics.median(v) for k, v in times.items()}
    # Each repeat's two runs are neighbours in time: their ratio cancels the machine's drift
    # between repeats, which the medians of the two columns do not.
    paired = [hand_s / ours_s for ours_s, hand_s in zip(times["polymodal"], times["by hand"],
                                                        strict=True)]
    print(f"{what}: polymodal {rates['polymodal']:.1f}, by hand {rates['by hand']:.1f}, "
          f"ratio {rates['polymodal'] / rates['by hand']:.3f} (median of {repeats}; "
          + ", ".join(f"{k} {min(v):.2f}-{max(v):.2f} s" for k, v in times.items())
          + f"); paired ratio: median {statistics.median(paired):.3f}, "
          f"mean {statistics.mean(paired):.3f}, from {min(paired):.3f} to {max(paired):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["train", "infer"])
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "train":
        bench_train(args.repeats)
    elif args.model_dir is None:
        parser.error("infer needs MODEL_DIR")
    else:
        bench_infer(args.model_dir, args.repeats)


if __name__ == "__main__":
    main()
