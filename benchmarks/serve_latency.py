"""Serving: does dynamic batching cost latency at low load, and what does it buy at high load?

Starts ``polymodal serve`` twice on the same model, batching off (--max-batch-size 1
--max-delay-ms 0) and on (--max-batch-size 32 --max-delay-ms 5), and measures p50/p95 latency
at concurrency 1 and throughput at concurrency 16 with one review per request.
Target (issue 5): at concurrency 1, p95(on) <= p95(off) + max-delay + 10%.

Usage: python benchmarks/serve_latency.py [MODEL_DIR]
(default runs/demo/nlp.sentiment; a quick model is trained into runs/bench-sentiment if none)
"""

from __future__ import annotations

import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _common import sentiment_model_dir, start_server

REQUESTS = 200


def measure(directory: Path, texts: list[str], batch: int, delay_ms: float) -> dict:
    server, base = start_server([directory], "--max-batch-size", str(batch),
                                "--max-delay-ms", str(delay_ms))
    url = f"{base}/v1/models/{directory.resolve().name}/predict"
    try:
        with httpx.Client(timeout=60) as http:
            def call(text: str) -> float:
                start = time.perf_counter()
                http.post(url, json={"records": [{"text": text}]}).raise_for_status()
                return time.perf_counter() - start

            for text in texts[:10]:
                call(text)  # warm-up
            serial = sorted(call(t) for t in texts)
            start = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(call, texts))
            concurrent_s = time.perf_counter() - start
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {"p50": statistics.median(serial), "p95": serial[int(0.95 * len(serial)) - 1],
            "rps16": len(texts) / concurrent_s}


def main() -> None:
    from polymodal_nlp.sentiment import load_demo

    directory = sentiment_model_dir(sys.argv)
    texts = [r["text"] for r in load_demo().test[:REQUESTS]]
    off = measure(directory, texts, 1, 0)
    on = measure(directory, texts, 32, 5)
    print(f"model {directory}, {REQUESTS} requests of one review each")
    print(f"{'batching':<10}{'p50 ms (c=1)':>14}{'p95 ms (c=1)':>14}{'req/s (c=16)':>14}")
    for name, row in (("off", off), ("on", on)):
        print(f"{name:<10}{row['p50'] * 1e3:>14.1f}{row['p95'] * 1e3:>14.1f}"
              f"{row['rps16']:>14.1f}")
    bound = (off["p95"] + 0.005) * 1.10
    print(f"c=1 p95 on {on['p95'] * 1e3:.1f} ms vs bound (p95 off + 5 ms) + 10% = "
          f"{bound * 1e3:.1f} ms -> {'met' if on['p95'] <= bound else 'NOT met'}")
    print(f"c=16 throughput on / off: {on['rps16'] / off['rps16']:.2f}x")


if __name__ == "__main__":
    main()
