"""Whether generated images show what their prompts say, judged by a retrieval model.

The judge is a ``vision.retrieve`` model trained on the real training scenes (at the
generator's image size) in the generator's ``judge/``. For each generated image:

- **colours**: every colour word of the prompt is replaced in turn by each other colour
  the prompt does not already name; the colour "appears" when the judge scores the image
  closer to the prompt than to each of these changed prompts. ``colour_match`` is the
  share of images whose named colours all appear; ``colour_match_objects`` the share of
  named objects;
- **shapes**: the same with the shape words;
- **recall@5**: the share of prompts whose generated image ranks in the judge's top 5 of
  all generated images;
- **colour_match_1_object**, **colour_match_2_objects** and the same for shapes: the
  matches of the prompts that name one object and of those that name two (binding two
  objects' words is the harder part).

The same measures of the real test images against their own captions stand beside them:
what the judge can tell at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import Record
from polymodal_vision.scenes import COLORS, SHAPES


def judge_spec(image_size: int, epochs: int) -> Any:
    """vision.retrieve's default spec at the generator's image size."""
    from polymodal.plugin import TrainSpec
    from polymodal_vision.retrieve import RetrieveSpec

    default = RetrieveSpec()
    image = default.image.model_copy(update={
        "options": {**default.image.options, "image_size": image_size}})
    train = TrainSpec(**{**default.train.model_dump(), "epochs": epochs})
    return RetrieveSpec(name="generation-judge", image=image, train=train)


def train_prompt_judge(spec: Any, train: list[Record], test: list[Record] | None,
                       out_dir: Path, device: str | None, progress: bool
                       ) -> dict[str, Any]:
    """A retrieval model of the real (image, prompt) pairs: it judges generated images."""
    from polymodal_vision.retrieve import train_retrieval

    target = spec.target
    pairs = [{"image": r["image"], "caption": r[target]} for r in train]
    held_out = [{"image": r["image"], "caption": r[target]} for r in test or []
                if r.get("image") is not None and r.get(target)]
    measured = train_retrieval(judge_spec(spec.image_size, spec.judge_epochs), pairs,
                               held_out or None, out_dir, device=device, progress=progress)
    test_metrics = measured.get("test") or {}
    return {k: v for k, v in test_metrics.items() if k in ("recall@1", "recall@5", "n")}


def counterfactuals(prompt: str, vocabulary: tuple[str, ...]) -> list[list[str]]:
    """Per word of ``vocabulary`` in ``prompt``: the prompt with that word replaced by each
    other word of ``vocabulary`` the prompt does not name."""
    words = prompt.split()
    named = set(words)
    changed = []
    for position, word in enumerate(words):
        if word in vocabulary:
            changed.append([" ".join(words[:position] + [other] + words[position + 1:])
                            for other in vocabulary if other not in named])
    return changed


def _named_share(scores: dict[str, torch.Tensor], prompts: list[str],
                 vocabulary: tuple[str, ...], chosen: list[int] | None = None
                 ) -> tuple[float, float]:
    """(share of images whose every named word wins, share of named words that win), over
    the images ``chosen`` (default: all)."""
    images = objects = images_ok = objects_ok = 0
    for i in range(len(prompts)) if chosen is None else chosen:
        prompt = prompts[i]
        groups = [group for group in counterfactuals(prompt, vocabulary) if group]
        if not groups:
            continue
        own = scores[prompt][i]
        wins = [bool(own > max(scores[text][i] for text in group)) for group in groups]
        images += 1
        images_ok += all(wins)
        objects += len(wins)
        objects_ok += sum(wins)
    return images_ok / max(images, 1), objects_ok / max(objects, 1)


def prompt_scores(judge: Any, images: list[Any], prompts: list[str]) -> dict[str, Any]:
    """The judge's measures of ``images`` against their ``prompts``."""
    from polymodal_vision.retrieve import recall_at_k

    texts = sorted({*prompts, *(text for p in prompts for vocabulary in (COLORS, SHAPES)
                                for group in counterfactuals(p, tuple(vocabulary))
                                for text in group)})
    image_vectors = judge.embed_images(images)
    text_vectors = judge.embed_texts(texts)
    similarity = text_vectors @ image_vectors.T  # [texts, images]
    scores = {text: similarity[k] for k, text in enumerate(texts)}
    position = {text: k for k, text in enumerate(texts)}
    colour, colour_objects = _named_share(scores, prompts, tuple(COLORS))
    shape, shape_objects = _named_share(scores, prompts, SHAPES)
    recall = recall_at_k(image_vectors, text_vectors[[position[p] for p in prompts]])
    measured = {"colour_match": colour, "colour_match_objects": colour_objects,
                "shape_match": shape, "shape_match_objects": shape_objects,
                "recall@1": recall["text_to_image_recall@1"],
                "recall@5": recall["text_to_image_recall@5"], "n": len(images)}
    # Flat keys, so that the report and the CLI's summary show them beside the rest.
    for count, chosen in sorted(_by_object_count(prompts).items()):
        objects = f"{count}_object" + ("s" if count > 1 else "")
        measured[f"colour_match_{objects}"] = _named_share(scores, prompts, tuple(COLORS),
                                                           chosen)[0]
        measured[f"shape_match_{objects}"] = _named_share(scores, prompts, SHAPES, chosen)[0]
    return measured


def _by_object_count(prompts: list[str]) -> dict[int, list[int]]:
    """The prompts' positions by how many shapes each names (prompts naming none are left
    out: no word of theirs is judged)."""
    groups: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        count = sum(word in SHAPES for word in prompt.split())
        if count:
            groups.setdefault(count, []).append(i)
    return groups


def judge_prompts(generator: Any, real: list[Record], judge_dir: Path,
                  batch_size: int = 64, seed: int = 0) -> dict[str, Any]:
    """The generated images of the first ``eval_prompts`` real records' prompts, judged;
    beside them the real images of those records."""
    from polymodal import load
    from polymodal_vision.generate import to_png

    chosen = real[:generator.spec.eval_prompts]
    prompts = [str(r[generator.spec.target]) for r in chosen]
    generated = generator.generate(prompts, seed=seed, batch_size=batch_size)
    judge = load(judge_dir, device=str(generator.device))
    measured = prompt_scores(judge, [to_png(image) for image in generated], prompts)
    measured["real"] = prompt_scores(judge, [r["image"] for r in chosen], prompts)
    return measured
