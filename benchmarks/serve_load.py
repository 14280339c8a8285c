"""Serving under load: dynamic batching on vs off at concurrency 16, concurrency 1 against the
raw forward pass, and (``--soak N``) a long run checking failures and memory growth.

Loopback only, bounded in requests. The model is the issue-5 shape: frozen MiniLM, mean
pooling + linear head, max length 128 (a quick nlp.sentiment probe trained into
runs/bench-serve on first use), fed fine-food review texts one per request.

Usage: python benchmarks/serve_load.py [--requests 400] [--soak 10000] [MODEL_DIR]
Targets (issue 5): on/off throughput at c=16 >= 1.4; c=1 rate >= 0.9x the raw one-at-a-time
forward rate; soak: 0 failed requests and resident memory growth < 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from pathlib import Path

import httpx
from _common import rss_mib, start_server

BENCH_MODEL = Path("runs/bench-serve")


def model_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    if not (BENCH_MODEL / "polymodal.yaml").is_file():
        from polymodal.scenario import load_scenario, run_scenario

        run_scenario(load_scenario("nlp.sentiment"), BENCH_MODEL, quick=True, progress=False,
                     overrides=["inputs.0.options.max_length=128",
                                "inputs.0.options.truncation=head"])
    return BENCH_MODEL


def raw_forward_rate(directory: Path, texts: list[str], precision: str) -> float:
    """Texts/s of a hand loop over the same model, one text per call: tokenize, forward,
    softmax (the "raw forward pass one at a time" of the issue, same dtype as the server)."""
    import torch

    import polymodal
    from polymodal.device import autocast
    from polymodal.model import move_batch, ordered_loader

    predictor = polymodal.load(directory, precision=precision)
    model = predictor.model.eval()
    loader = ordered_loader(model, [{"text": t} for t in texts], 1, with_target=False)
    with torch.inference_mode(), autocast(predictor.device, predictor.dtype):
        start = time.perf_counter()
        for batch in loader:
            batch = move_batch(batch, predictor.device)
            model(batch["inputs"], batch["present"]).softmax(-1).tolist()
    return len(texts) / (time.perf_counter() - start)


async def load(url: str, texts: list[str], concurrency: int) -> dict[str, float]:
    """Send every text once with ``concurrency`` requests in flight; latencies and rate."""
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                text = queue.get_nowait()
                start = time.perf_counter()
                response = await http.post(url, json={"records": [{"text": text}]})
                latencies.append(time.perf_counter() - start)
                failures += response.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rps": len(texts) / elapsed, "p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * len(latencies)) - 1],
            "p99": latencies[int(0.99 * len(latencies)) - 1], "failed": failures}


def serve_and_load(directory: Path, texts: list[str], batching: bool, concurrency: int,
                   precision: str) -> dict[str, float]:
    options = ("--max-batch-size", "32", "--max-delay-ms", "5") if batching else \
        ("--max-batch-size", "1", "--max-delay-ms", "0")
    server, base = start_server([directory], *options, "--precision", precision)
    url = f"{base}/v1/models/{directory.resolve().name}/predict"
    try:
        asyncio.run(load(url, texts[:20], concurrency))  # warm-up
        return asyncio.run(load(url, texts, concurrency))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def soak(directory: Path, texts: list[str], total: int) -> None:
    server, base = start_server([directory])
    url = f"{base}/v1/models/{directory.resolve().name}/predict"
    try:
        stream = [texts[i % len(texts)] for i in range(total)]
        asyncio.run(load(url, texts, 16))  # warm-up: one pass, allocator and caches settle
        before = rss_mib(server.pid)
        result = asyncio.run(load(url, stream, 16))
        after = rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    growth = (after - before) / before
    print(f"soak: {total} requests at c=16, {result['rps']:.1f} req/s, "
          f"failed {result['failed']}, p99 {result['p99'] * 1e3:.0f} ms, "
          f"RSS {before:.0f} -> {after:.0f} MiB ({growth:+.1%}) -> "
          f"{'met' if result['failed'] == 0 and growth < 0.10 else 'NOT met'}")


def main() -> None:
    from polymodal_nlp.sentiment import load_demo

    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--soak", type=int, default=0, help="also run N requests at c=16")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "auto", "bf16"])
    args = parser.parse_args()
    directory = model_dir(args.model_dir)
    texts = [r["text"] for r in load_demo().test]
    sample = texts[:args.requests]

    precision = args.precision
    raw_forward_rate(directory, sample[:5], precision)  # warm-up
    raw = raw_forward_rate(directory, sample[:200], precision)
    rows = {
        ("off", 16): serve_and_load(directory, sample, False, 16, precision),
        ("on", 16): serve_and_load(directory, sample, True, 16, precision),
        ("on", 1): serve_and_load(directory, sample[:200], True, 1, precision),
    }
    print(f"model {directory}, precision {precision}; one review per request; raw forward "
          f"one at a time {raw:.1f} texts/s")
    print(f"{'batching':<10}{'conc':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'failed':>8}")
    for (name, conc), row in rows.items():
        print(f"{name:<10}{conc:>6}{row['rps']:>9.1f}{row['p50'] * 1e3:>9.0f}"
              f"{row['p95'] * 1e3:>9.0f}{row['p99'] * 1e3:>9.0f}{row['failed']:>8}")
    ratio = rows[("on", 16)]["rps"] / rows[("off", 16)]["rps"]
    c1 = rows[("on", 1)]["rps"] / raw
    print(f"c=16 throughput on / off: {ratio:.2f}x (target >= 1.4; TorchServe 1.06x)")
    print(f"c=1 rate / raw forward rate: {c1:.2f}x (target >= 0.9; TorchServe 0.85x)")
    if args.soak:
        soak(directory, texts, args.soak)


if __name__ == "__main__":
    main()
