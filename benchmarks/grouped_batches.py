"""Training throughput of the vision.vqa default with batches of whole scenes
(``train.group_by: image``: each image processed and encoded once for all its questions)
as a ratio to plain shuffled batches (the baseline), same model, batch size and questions.

Usage: python benchmarks/grouped_batches.py [STEPS]   (default 60 steps of 64 questions)
"""

from __future__ import annotations

import sys
import time

import torch

from polymodal.data.collate import Collator, field_value, shared_key
from polymodal.data.loader import make_loader
from polymodal.device import autocast, autocast_dtype
from polymodal.model import build_model, build_task
from polymodal.spec import parse_spec
from polymodal.training import seed_everything
from polymodal_vision.vqa import SPEC, load_demo


def throughput(records: list[dict], grouped: bool, steps: int) -> tuple[float, float, float]:
    """(questions/s, seconds collating, seconds in forward+backward+update) over ``steps``
    training steps after 3 warm-up steps."""
    spec = parse_spec(SPEC)
    seed_everything(0)
    task = build_task(spec)
    task.fit([r["answer"] for r in records])
    model = build_model(spec, task=task, train_records=records).train()
    image = next(i for i in spec.inputs if i.name == "image")
    groups = [shared_key(field_value(r, image)) for r in records] if grouped else None
    loader = make_loader(records, Collator(spec, model.processors, task,
                                           shared="image" if grouped else None),
                         batch_size=spec.train.batch_size, shuffle=True, seed=0, groups=groups)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.train.lr)
    device = torch.device("cpu")
    dtype = autocast_dtype(device, spec.train.precision)
    batches = iter(loader)
    collating = computing = 0.0
    questions = 0
    for step in range(steps + 3):
        start = time.perf_counter()
        batch = next(batches)
        collated = time.perf_counter()
        with autocast(device, dtype):
            logits = model(batch["inputs"], batch["present"], batch.get("repeat"))
        loss = task.loss(logits, batch["target"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 3:
            collating += collated - start
            computing += time.perf_counter() - collated
            questions += len(batch["target"])
    return questions / (collating + computing), collating, computing


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    records = load_demo().train
    rows = []
    for name, grouped in (("plain shuffled batches (baseline)", False),
                          ("batches of whole scenes (group_by)", True)):
        rate, collating, computing = throughput(records, grouped, steps)
        rows.append(rate)
        print(f"{name:38s} {rate:7.1f} questions/s  (collate {collating / steps * 1000:5.1f} "
              f"ms/step, forward+backward+update {computing / steps * 1000:6.1f} ms/step)")
    print(f"ratio grouped / plain: {rows[1] / rows[0]:.2f}x")


if __name__ == "__main__":
    main()
