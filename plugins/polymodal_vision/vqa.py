"""``vision.vqa``: image + question -> answer, from registered pieces: an image encoder, a
text encoder (``word-transformer``: the questions are short and from a small grammar; any
registered text encoder, e.g. ``minilm``, by ``--set``), a core fusion (``find`` by
default: each word finds its object on the image grid; any other by ``--set
fusion.name=...``) and classification over the answers. The
run's report carries the modality ablation: image-only and question-only models beside the
fused one.

Embedded default: synthetic scenes (3,000 for training, 500 held out), each with 3-9
questions (18,918 for training, 3,246 held out)."""

from __future__ import annotations

from polymodal.plugin import DemoData, Scenario

SPEC = {
    "name": "scenes-vqa",
    "data": {"validation": 0.1},
    "inputs": [
        # Three blocks: an 8x8 grid of tokens, each mostly one shape (a 4x4 grid's cells
        # mix shapes, and binding a name to its shape came later or not at all).
        {"name": "image", "modality": "image", "encoder": "small-cnn",
         "options": {"image_size": 64, "width": 32, "output_dim": 128, "blocks": 3,
                     "coords": True}},
        {"name": "question", "modality": "text", "encoder": "word-transformer",
         "options": {"dim": 128, "layers": 1, "max_length": 16, "dropout": 0.0}},
    ],
    # Each word finds its object on the grid and reads what is there and where (the find
    # fusion); two learned pointers pick the named objects' places for comparison, which
    # the attention fusion's decoder never learned ("is the circle left of the square?"
    # stayed at chance): docs/benchmarks.md.
    "fusion": {"name": "find", "options": {"query": "question", "hidden": 128, "heads": 1,
                                           "readout": 16, "roles": 2, "dropout": 0.0}},
    "task": {"name": "classification", "target": "answer"},
    # Batches of whole scenes (group_by: each image is encoded once for all its questions,
    # 2.50x the questions per second: benchmarks/grouped_batches.py); every batch also
    # mixes the question families.
    "train": {"epochs": 14, "batch_size": 64, "lr": 1.0e-3, "warmup": 0.05,
              "schedule": "cosine", "seed": 0, "group_by": "image", "ablation_epochs": 1},
    "ablation": True,
}
TRAIN_SCENES, TEST_SCENES = 3000, 500


def load_demo() -> DemoData:
    from polymodal_vision.datasets import scenes

    train = scenes("questions", TRAIN_SCENES, seed=0)
    test = scenes("questions", TEST_SCENES, seed=1)
    examples = [{"image": r["image"], "question": r["question"]} for r in test[:4]]
    return DemoData(train=train, test=test, examples=examples,
                    source=f"synthetic scenes ({TRAIN_SCENES} train, {TEST_SCENES} test)")


def vqa_scenario() -> Scenario:
    return Scenario(name="vision.vqa", description="image + question -> answer (synthetic "
                    "scenes)", default_spec=SPEC, load_demo=load_demo,
                    quick_overrides=["train.epochs=3", "ablation=false"],
                    quick_records=200)
