"""``polymodal.load(...).predict`` throughput on 2,000 reviews as a ratio to a hand-written
loop over the same tokenizer, model and batch size (target >= 0.95).

Usage: python benchmarks/predict_overhead.py [MODEL_DIR]
(default: runs/demo/nlp.sentiment, the model ``make demo`` trains; a quick model is trained
into runs/bench-sentiment when neither exists).
"""

from __future__ import annotations

import sys
import time

import torch
from _common import sentiment_model_dir

import polymodal

BATCH = 64
N = 2000


@torch.inference_mode()
def hand_written(model, texts: list[str]) -> list[str]:
    """What a user would write without polymodal: tokenize, forward, mean-pool, head."""
    encoder = model.encoders["text"]
    tokenizer, max_length = encoder.processor.tokenizer, encoder.processor.max_length
    labels = model.task.labels
    out = []
    for start in range(0, len(texts), BATCH):
        batch = tokenizer(texts[start:start + BATCH], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt")
        hidden = encoder.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        flag = torch.ones(len(pooled), 1)  # concat fusion's presence flag
        logits = model.head(torch.cat([pooled, flag], dim=-1))
        out.extend(labels[i] for i in logits.argmax(-1).tolist())
    return out


def main() -> None:
    from polymodal_nlp.sentiment import load_demo

    directory = sentiment_model_dir(sys.argv)
    predictor = polymodal.load(directory, device="cpu")
    texts = [r["text"] for r in (load_demo().test * 2)[:N]]
    records = [{"text": t} for t in texts]
    predictor.predict(records[:BATCH])  # warm-up
    start = time.perf_counter()
    ours = predictor.predict(records, batch_size=BATCH)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = hand_written(predictor.model, texts)
    hand_s = time.perf_counter() - start
    agree = sum(a["label"] == b for a, b in zip(ours, theirs, strict=True)) / N
    print(f"model: {directory}  records: {N}  batch size: {BATCH}  "
          f"threads: {torch.get_num_threads()}")
    print(f"{'':<28}{'seconds':>10}{'records/s':>12}")
    print(f"{'hand-written loop':<28}{hand_s:>10.2f}{N / hand_s:>12.1f}")
    print(f"{'polymodal predict':<28}{ours_s:>10.2f}{N / ours_s:>12.1f}")
    print(f"throughput ratio (polymodal / hand-written): {hand_s / ours_s:.2f} "
          f"(target >= 0.95); label agreement {agree:.3f}")


if __name__ == "__main__":
    main()
