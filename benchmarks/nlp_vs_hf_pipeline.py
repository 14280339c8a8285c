"""NER prediction throughput: ``polymodal predict`` (the loaded tagger: length-sorted
batches, one forward per batch) against transformers ``pipeline("token-classification")``
at its default settings over the same weights (the tagger exported with ``export_hf``), same
device, same 2,000 sentences, run side by side. Also reports how often the two agree on
every word's tag (they share weights, so this should be 1.0 up to ties).

Target (issue 3): ratio >= 1.5.
Usage: python benchmarks/nlp_vs_hf_pipeline.py [MODEL_DIR] [--sentences 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import timed


def model_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    for candidate in (Path("runs/demo/nlp.ner"), Path("runs/nlp-ner"), Path("runs/bench-ner")):
        if (candidate / "polymodal.yaml").is_file():
            return candidate
    from polymodal.scenario import load_scenario, run_scenario

    run_scenario(load_scenario("nlp.ner"), Path("runs/bench-ner"), quick=True, progress=False)
    return Path("runs/bench-ner")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    import polymodal
    from polymodal_nlp.ner import export_hf
    from polymodal_nlp.ner_corpus import corpus

    torch.manual_seed(0)
    _, sentences = corpus(train_size=0, test_size=args.sentences, seed=1)
    records = [{"text": r["text"]} for r in sentences]
    texts = [r["text"] for r in records]
    tagger = polymodal.load(model_dir(args.model), device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        export_hf(tagger, folder)
        hf = pipeline("token-classification", model=folder, device="cpu")
        hf(texts[:8])  # warm-up
        tagger.predict(records[:8])
        ours = timed(lambda: tagger.predict(records), args.repeats, warmup=False)
        theirs = timed(lambda: hf(texts), args.repeats, warmup=False)
        # Agreement: entity words the pipeline tags (non-O) vs our spans covering them.
        agree = total = 0
        for hf_tokens, ours_out in zip(hf(texts), tagger.predict(records), strict=True):
            for token in hf_tokens:
                if token["word"].startswith("##"):
                    continue
                total += 1
                label = token["entity"].partition("-")[2]
                agree += any(e["start"] <= token["start"] < e["end"] and e["label"] == label
                             for e in ours_out["entities"])
    print(f"{'':28}{'seconds':>10}{'sentences/s':>14}")
    print(f"{'polymodal predict':28}{ours:>10.2f}{len(texts) / ours:>14.1f}")
    print(f"{'transformers pipeline':28}{theirs:>10.2f}{len(texts) / theirs:>14.1f}")
    print(f"ratio (ours / pipeline throughput): {theirs / ours:.2f}  (target >= 1.5)")
    print(f"pipeline entity words inside our spans with the same type: {agree}/{total}")


if __name__ == "__main__":
    main()
