"""DDP on one CPU machine: samples/s of 2 processes vs 1, and polymodal's trainer steps/s as
a ratio to a hand-written DDP loop on the same model, data and batches (target >= 0.95).

The model is a 4-layer, 128-wide BERT built from a config (no download) over synthetic
reviews, with the categorical and numeric columns fused by ``concat``. Each configuration runs
under torch's elastic launcher with OMP_NUM_THREADS = cores / processes.

Usage: python benchmarks/ddp_scaling.py [--records 2048] [--epochs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORDS = ("good great tasty fresh lovely bad awful stale bland broken the snack was really "
         "very box and taste it a").split()


def make_data(folder: Path, records: int) -> Path:
    rng = random.Random(0)
    with (folder / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "shop", "price", "label"])
        for _ in range(records):
            positive = rng.random() < 0.5
            words = [rng.choice(WORDS) for _ in range(rng.randint(20, 60))]
            words.append("great" if positive else "awful")
            writer.writerow([" ".join(words), rng.choice("abcd"), rng.gauss(10, 2),
                             "pos" if positive else "neg"])
    return folder / "train.csv"


def make_bert(folder: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=4,
                        num_attention_heads=4, intermediate_size=512,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder))
    return folder


def write_spec(folder: Path, bert: Path, epochs: int) -> Path:
    import yaml

    spec = {
        "name": "ddp-bench",
        "data": {"train": str(folder / "train.csv"), "validation": 0.0},
        "inputs": [
            {"name": "review", "modality": "text", "encoder": "hf-text", "source": str(bert),
             "options": {"max_length": 64}},
            {"name": "shop", "modality": "categorical", "encoder": "categorical"},
            {"name": "price", "modality": "numeric", "encoder": "numeric"},
        ],
        "fusion": {"name": "concat"},
        "task": {"name": "classification", "target": "label"},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 1.0e-3, "precision": "fp32",
                  "bucket_by_length": False},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


HAND_WRITTEN = textwrap.dedent('''
    """A hand-written DDP loop over the same model, collate and batches as polymodal's."""
    import json, os, sys, time
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader
    from polymodal.data.readers import read_records
    from polymodal.data.collate import Collator
    from polymodal.model import build_model, build_task
    from polymodal.spec import load_spec

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    spec = load_spec(sys.argv[1])
    records = read_records(spec.data.train)
    torch.manual_seed(0)
    task = build_task(spec)
    task.fit([r["label"] for r in records])
    model = build_model(spec, task=task, train_records=records)
    model.train()  # dropout on, as in any training loop (from_pretrained returns eval mode)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    per_rank = spec.train.batch_size // world
    batches = [list(range(i, min(i + spec.train.batch_size, len(records))))[rank::world]
               for i in range(0, len(records), spec.train.batch_size)]
    loader = DataLoader(records, batch_sampler=batches,
                        collate_fn=Collator(spec, model.processors, task))
    steps, start = 0, None
    for epoch in range(spec.train.epochs):
        if epoch == 1:
            steps, start = 0, time.perf_counter()   # epoch 0 is warm-up
        for batch in loader:
            loss = task.loss(ddp(batch["inputs"], batch["present"]), batch["target"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
    if rank == 0:
        print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start)}))
    dist.destroy_process_group()
''')


def run_polymodal(spec: Path, out: Path, nproc: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-m", "polymodal.cli.main", "train", str(spec), "--out",
                    str(out), "--quiet", "--nproc-per-node", str(nproc)],
                   check=True, env=env, capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    return rows[-1]  # the last epoch: past warm-up


def run_hand_written(spec: Path, folder: Path, nproc: int, threads: int) -> float:
    script = folder / "hand_written_ddp.py"
    script.write_text(HAND_WRITTEN)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc-per-node={nproc}", str(script), str(spec)],
                            check=True, env=env, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, args.records)
        spec = write_spec(folder, make_bert(folder / "bert"), args.epochs)
        started = time.perf_counter()
        one = run_polymodal(spec, folder / "one", 1, cores)
        two = run_polymodal(spec, folder / "two", 2, max(1, cores // 2))
        batch = 32
        ours = two["samples_per_s"] / batch
        hand = run_hand_written(spec, folder, 2, max(1, cores // 2))
        print(f"cores: {cores}; {args.records} records x {args.epochs} epochs, global batch "
              f"{batch}; figures from the last epoch ({time.perf_counter() - started:.0f} s)")
        print(f"{'configuration':<44}{'samples/s':>12}{'steps/s':>10}")
        print(f"{'polymodal, 1 process x ' + str(cores) + ' threads':<44}"
              f"{one['samples_per_s']:>12.1f}{one['samples_per_s'] / batch:>10.2f}")
        print(f"{'polymodal, 2 processes x ' + str(max(1, cores // 2)) + ' threads':<44}"
              f"{two['samples_per_s']:>12.1f}{ours:>10.2f}")
        print(f"{'hand-written DDP loop, 2 processes':<44}{hand * batch:>12.1f}{hand:>10.2f}")
        print(f"2 processes / 1 process: {two['samples_per_s'] / one['samples_per_s']:.2f}x")
        print(f"polymodal / hand-written steps/s: {ours / hand:.2f} (target >= 0.95)")


if __name__ == "__main__":
    main()
