"""How good generated images are, measured against real ones.

- **class accuracy**: a classifier trained on the real training images (a ``vision.classify``
  model, the generator's ``judge/``) labels each generated image; the share labelled as the
  class asked for, overall and per class.
- **Frechet distance** in two feature spaces: that classifier's (its image encoder's pooled
  vector) and ImageNet MobileNetV2's (224 px, pooled 1,280 features; the offline weights of
  ``mobilenet_v2`` with ``weights: imagenet``). The real held-out images are split in two
  halves A and B (stratified by label); the floor is the distance between A and B, the
  model's the distance between generated images (A's label counts) and B, so both are
  estimated from sets of the same size. The Inception network of the standard FID is not
  available offline.
- **diversity**: the mean pairwise pixel distance between images of one class (averaged over
  classes), generated against real; 1 is as varied as the real data.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import Record


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Frechet distance between Gaussians fitted to feature rows ``a`` and ``b``:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2).

    The trace of the root is taken as the sum of the square roots of the eigenvalues of
    the symmetric S_a^1/2 S_b S_a^1/2 (the same eigenvalues as S_a S_b): exact for the
    rank-deficient covariances of fewer samples than features, where a general matrix
    square root is unstable."""
    import numpy as np

    x, y = a.double().numpy(), b.double().numpy()
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    values, vectors = np.linalg.eigh(cov_x)
    root_x = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = np.linalg.eigvalsh(root_x @ cov_y @ root_x).clip(min=0)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y)
                 - 2 * np.sqrt(middle).sum())


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between distinct pairs of images (flattened)."""
    flat = images.flatten(1).double()
    if len(flat) < 2:
        return 0.0
    distances = torch.cdist(flat, flat)
    n = len(flat)
    return float(distances.sum() / (n * (n - 1)))


def _halves(records: list[Record], target: str, seed: int = 0, cap: int | None = None
            ) -> tuple[list[Record], list[Record]]:
    """Two halves of ``records`` of the same size, stratified by label, at most ``cap`` per
    label each."""
    by_label: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_label[str(record[target])].append(record)
    first, second = [], []
    rng = random.Random(seed)
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        half = len(group) // 2 if cap is None else min(len(group) // 2, cap)
        first += group[:half]
        second += group[half:2 * half]
    return first, second


def pooled_features(encoder: Any, processor: Any, images: list[Any], device: Any,
                    batch_size: int = 128) -> torch.Tensor:
    """An image encoder's pooled vectors of images (paths or PNG bytes)."""
    rows = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = processor(images[start:start + batch_size])
            batch = {k: v.to(device) for k, v in batch.items()}
            rows.append(encoder(batch).pooled.float().cpu())
    return torch.cat(rows)


def judge_features(judge: Any, images: list[Any]) -> torch.Tensor:
    """The judge classifier's image features of images."""
    return pooled_features(judge.model.encoders["image"], judge.model.processors["image"],
                           images, judge.device)


def imagenet_features(images: list[Any], device: Any) -> torch.Tensor:
    """ImageNet MobileNetV2's pooled features of images (one frozen copy in the hub)."""
    from polymodal.plugin import BuildContext, InputSpec, build_encoder

    spec = InputSpec(name="image", modality="image", encoder="mobilenet_v2", frozen=True,
                     options={"weights": "imagenet", "image_size": 224})
    encoder = build_encoder(spec, BuildContext(device=torch.device(device))).eval()
    return pooled_features(encoder, encoder.processor, images, device, batch_size=64)


def _frechet_pair(features: Any, generated: list[Any], half_a: list[Any],
                  half_b: list[Any]) -> tuple[float, float]:
    """(generated vs B, A vs B) Frechet distances in one feature space."""
    b = features(half_b)
    return frechet_distance(features(generated), b), frechet_distance(features(half_a), b)


def judge_quality(generator: Any, real: list[Record], judge_dir: Path,
                  batch_size: int = 64, seed: int = 0) -> dict[str, Any]:
    """Class accuracy, Frechet distance and diversity of the generator's images against the
    real records (``image`` and the label field)."""
    from polymodal import load
    from polymodal_vision.generate import image_tensor, to_png

    target, size = generator.spec.target, generator.spec.image_size
    judge = load(judge_dir, device=str(generator.device))
    per_label = generator.spec.eval_per_label
    labels = [label for label in generator.labels for _ in range(per_label)]
    generated = generator.generate(labels, seed=seed, batch_size=batch_size)
    pngs = [to_png(image) for image in generated]
    judged = judge.predict([{"image": png} for png in pngs], batch_size=128)
    hits: Counter[str] = Counter()
    for label, verdict in zip(labels, judged, strict=True):
        hits[label] += verdict["label"] == label
    accuracy = sum(hits.values()) / len(labels)

    half_a, half_b = _halves(real, target, seed, cap=per_label)
    wanted = Counter(str(r[target]) for r in half_a)
    chosen = [i for label in generator.labels
              for i in [j for j, x in enumerate(labels) if x == label][:wanted[label]]]
    sets = ([pngs[i] for i in chosen], [r["image"] for r in half_a],
            [r["image"] for r in half_b])
    distance, floor = _frechet_pair(lambda images: judge_features(judge, images), *sets)
    imagenet, imagenet_floor = _frechet_pair(
        lambda images: imagenet_features(images, generator.device), *sets)

    real_images = image_tensor([r["image"] for r in real], size)
    real_labels = [str(r[target]) for r in real]
    diversity_generated = sum(
        mean_pairwise_distance(generated[[i for i, x in enumerate(labels) if x == label]])
        for label in generator.labels) / len(generator.labels)
    present = [label for label in generator.labels if real_labels.count(label) > 1]
    diversity_real = sum(
        mean_pairwise_distance((real_images[[i for i, x in enumerate(real_labels)
                                             if x == label]] + 1) / 2)
        for label in present) / max(len(present), 1)
    return {
        "class_accuracy": accuracy,
        "class_accuracy_per_label": {label: hits[label] / per_label
                                     for label in generator.labels},
        "frechet_classifier": distance,
        "frechet_classifier_floor": floor,
        "frechet_ratio": distance / floor if floor > 0 else float("inf"),
        "frechet_imagenet": imagenet,
        "frechet_imagenet_floor": imagenet_floor,
        "frechet_imagenet_ratio": (imagenet / imagenet_floor if imagenet_floor > 0
                                   else float("inf")),
        "diversity": diversity_generated,
        "diversity_real": diversity_real,
        "diversity_ratio": diversity_generated / diversity_real if diversity_real else 0.0,
        "generated": len(labels), "n": len(real),
    }


def sample_grid(generator: Any, rows: list[Any], path: Path, columns: int = 8,
                seed: int = 0) -> None:
    """A PNG grid: one row per condition of ``rows`` (a label, a prompt), ``columns``
    samples each."""
    from torchvision.utils import save_image

    values = [value for value in rows for _ in range(columns)]
    images = generator.generate(values, seed=seed)
    save_image(images, str(path), nrow=columns, padding=1, pad_value=0.5)
