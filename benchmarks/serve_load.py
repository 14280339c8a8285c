"""Serving under load: dynamic batching on vs off at concurrency 16, concurrency 1 against the
raw forward pass, and (``--soak N``) a long run checking failures and memory growth.

Loopback only, bounded in requests. The model is the issue-5 shape: frozen MiniLM, mean
pooling + linear head, max length 128 (a quick nlp.sentiment probe trained into
runs/bench-serve on first use), fed fine-food review texts one per request.

Usage: python benchmarks/serve_load.py [--requests 400] [--soak 2000] [--soak-only] [MODEL]
Targets (issue 5): on/off throughput at c=16 >= 1.4; c=1 rate >= 0.9x the raw one-at-a-time
forward rate. Soak (reliability issue): the good requests alone, then with a quarter bad
requests of every kind mixed in: 0 failed good requests, resident memory growth < 10%, p99
of the good requests within 1.5x of the good-only run, every bad one answered with its 4xx;
/health within 100 ms (p95) while 15 MB bodies are parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import time
from pathlib import Path
from typing import Any

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
    from polymodal.data.collate import move_batch, ordered_loader
    from polymodal.device import autocast

    predictor = polymodal.load(directory, precision=precision)
    model = predictor.model.eval()
    loader = ordered_loader(model, [{"text": t} for t in texts], 1, with_target=False)
    with torch.inference_mode(), autocast(predictor.device, predictor.dtype):
        start = time.perf_counter()
        for batch in loader:
            batch = move_batch(batch, predictor.device)
            model(batch["inputs"], batch["present"]).softmax(-1).tolist()
    return len(texts) / (time.perf_counter() - start)


async def load(url: str, texts: list[str], concurrency: int) -> dict[str, Any]:
    """Send every text once with ``concurrency`` requests in flight; latencies and rate."""
    return await mixed_load(url, "", texts, concurrency, 0)


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


# Bad requests of every kind the reliability issue names, each with the status it must get
# (a connection cut by the server counts as "closed"). A quarter of the mixed soak is these.
def _deep(depth: int) -> bytes:
    return b'{"records": ' + b"[" * depth + b"]" * depth + b"}"


async def _too_slow_body() -> Any:
    yield b'{"records": [{"te'
    await asyncio.sleep(SLOW_BODY_S)
    yield b'xt": "late"}]}'


async def _chunked_over_limit() -> Any:
    for _ in range(3):
        yield b"[" * (1 << 20)


SOAK_BODY_MB = 2
SLOW_BODY_S = 3.0
BAD_REQUESTS: list[tuple[str, dict[str, Any], set[Any]]] = [
    ("not JSON", {"content": b"{oops", "headers": {"content-type": "application/json"}},
     {422}),
    ("text/plain", {"content": b'{"records": [{"text": "x"}]}',
                    "headers": {"content-type": "text/plain"}}, {415}),
    ("2000 records", {"json": {"records": [{"text": "x"}] * 2000}}, {413}),
    ("Infinity", {"content": b'{"records": [{"text": Infinity}]}',
                  "headers": {"content-type": "application/json"}}, {422}),
    ("nested 5000 deep", {"content": _deep(5000),
                          "headers": {"content-type": "application/json"}}, {422}),
    ("body over the limit", {"content": b" " * (3 << 20),
                             "headers": {"content-type": "application/json"}}, {413}),
    ("chunked over the limit", {"content": _chunked_over_limit,
                                "headers": {"content-type": "application/json"}},
     {413, "closed"}),
    ("empty records", {"json": {"records": []}}, {422}),
    ("object value", {"json": {"records": [{"text": {"a": 1}}]}}, {422}),
    ("no known field", {"json": {"records": [{"colour": "red"}]}}, {422}),
    ("rebinding Host", {"json": {"records": [{"text": "x"}]},
                        "headers": {"host": "attacker.example"}}, {403}),
    ("unknown model", {"json": {"records": [{"text": "x"}]}, "path": "/v1/models/nope"
                                                                     "/predict"}, {404}),
    ("trailing slash", {"json": {"records": [{"text": "x"}]}, "suffix": "/"}, {404}),
    ("GET on predict", {"method": "GET"}, {405}),
    ("slow body", {"content": _too_slow_body,
                   "headers": {"content-type": "application/json"}}, {408, "closed"}),
    ("client gives up", {"json": {"records": [{"text": "x " * 60}] * 500},
                         "give_up_s": 0.05}, {"gave up"}),
]


async def _bad(http: httpx.AsyncClient, url: str, base: str, kind: int) -> tuple[str, Any]:
    name, spec, _ = BAD_REQUESTS[kind]
    target = base + spec["path"] if "path" in spec else url + spec.get("suffix", "")
    content = spec.get("content")
    if callable(content):
        content = content()
    request = http.request(spec.get("method", "POST"), target, json=spec.get("json"),
                           content=content, headers=spec.get("headers"))
    try:
        if "give_up_s" in spec:
            await asyncio.wait_for(request, spec["give_up_s"])
            return name, "answered before giving up"
        response = await request
    except TimeoutError:
        return name, "gave up"
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        return name, "closed"
    return name, response.status_code


async def mixed_load(url: str, base: str, texts: list[str], concurrency: int,
                     bad_every: int) -> dict[str, Any]:
    """``texts`` as good requests, with one bad request (cycling through every kind) after
    each ``bad_every - 1`` good ones; good latencies and failures, bad statuses by kind."""
    latencies: list[float] = []
    failures = 0
    outcomes: dict[str, dict[Any, int]] = {}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    kind = 0
    for i in range(len(texts)):
        queue.put_nowait(("good", i))
        if bad_every and i % (bad_every - 1) == bad_every - 2:
            queue.put_nowait(("bad", kind % len(BAD_REQUESTS)))
            kind += 1
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                what, index = queue.get_nowait()
                if what == "bad":
                    name, outcome = await _bad(http, url, base, index)
                    outcomes.setdefault(name, {}).setdefault(outcome, 0)
                    outcomes[name][outcome] += 1
                    continue
                start = time.perf_counter()
                response = await http.post(url, json={"records": [{"text": texts[index]}]})
                latencies.append(time.perf_counter() - start)
                failures += response.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rps": len(texts) / elapsed, "p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * len(latencies)) - 1],
            "p99": latencies[int(0.99 * len(latencies)) - 1], "failed": failures,
            "outcomes": outcomes}


def soak(directory: Path, texts: list[str], total: int) -> None:
    """Good-only, then the same good requests with a quarter bad ones mixed in: failed good
    requests, p99 of the good ones against the good-only run, resident memory growth."""
    server, base = start_server([directory], "--max-body-mb", str(SOAK_BODY_MB),
                                "--body-timeout-s", "2")
    url = f"{base}/v1/models/{directory.resolve().name}/predict"
    stream = [texts[i % len(texts)] for i in range(total)]
    try:
        asyncio.run(load(url, texts[:400], 16))  # warm-up: allocator and caches settle
        good_only = asyncio.run(mixed_load(url, base, stream, 16, 0))
        # One pass over every bad kind first, so that first-use allocations are not growth.
        asyncio.run(mixed_load(url, base, texts[:3 * len(BAD_REQUESTS)], 16, 4))
        before = rss_mib(server.pid)
        mixed = asyncio.run(mixed_load(url, base, stream, 16, 4))
        after = rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    server, base = start_server([directory])  # the default 16 MB body limit
    try:
        health = asyncio.run(health_under_big_bodies(
            base, f"{base}/v1/models/{directory.resolve().name}/predict"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    growth = (after - before) / before
    ratio = mixed["p99"] / good_only["p99"]
    bad_total = sum(sum(v.values()) for v in mixed["outcomes"].values())
    print(f"soak: {total} good requests at c=16, alone and with {bad_total} bad ones (25%)")
    print(f"{'run':<12}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'failed good':>13}")
    for name, row in (("good only", good_only), ("mixed", mixed)):
        print(f"{name:<12}{row['rps']:>8.1f}{row['p50'] * 1e3:>9.0f}{row['p99'] * 1e3:>9.0f}"
              f"{row['failed']:>13}")
    wrong = []
    print(f"{'bad request':<24}{'expected':>16}  got")
    for name, _, expected in BAD_REQUESTS:
        got = mixed["outcomes"].get(name, {})
        print(f"{name:<24}{'/'.join(map(str, sorted(expected, key=str))):>16}  {got}")
        if set(got) - expected:
            wrong.append(name)
    print(f"p99 mixed / good only: {ratio:.2f}x (target <= 1.5); RSS {before:.0f} -> "
          f"{after:.0f} MiB ({growth:+.1%}, target < 10%); bad answered as expected: "
          f"{'all' if not wrong else 'NOT ' + ', '.join(wrong)}")
    print(f"/health while 15 MB bodies are parsed: p50 {health['p50'] * 1e3:.1f} ms, "
          f"p95 {health['p95'] * 1e3:.1f} ms, max {health['max'] * 1e3:.1f} ms "
          f"(target < 100 ms)")
    met = (mixed["failed"] == 0 and growth < 0.10 and ratio <= 1.5 and not wrong
           and health["p95"] < 0.1)
    print(f"soak targets: {'met' if met else 'NOT met'}")


async def health_under_big_bodies(base: str, url: str, bodies: int = 2) -> dict[str, float]:
    """/health latencies while ``bodies`` 15 MB JSON bodies (one long text each, under a
    raised body limit) are parsed and predicted one after another."""
    text = "tasty tea " * 1_500_000
    body = json.dumps({"records": [{"text": text}]}).encode()
    latencies: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(timeout=120) as http:
        async def probe() -> None:
            while not done.is_set():
                start = time.perf_counter()
                await http.get(f"{base}/health")
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.01)

        prober = asyncio.ensure_future(probe())
        for _ in range(bodies):
            await http.post(url, content=body, headers={"content-type": "application/json"})
        done.set()
        await prober
    latencies.sort()
    return {"p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * len(latencies)) - 1], "max": latencies[-1]}


def main() -> None:
    from polymodal_nlp.sentiment import load_demo

    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--soak", type=int, default=0, help="also run N requests at c=16")
    parser.add_argument("--soak-only", action="store_true", help="only the soak")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "auto", "bf16"])
    args = parser.parse_args()
    directory = model_dir(args.model_dir)
    texts = [r["text"] for r in load_demo().test]
    sample = texts[:args.requests]
    if args.soak_only:
        soak(directory, texts, args.soak or 2000)
        return

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
