"""Helpers shared by the benchmark scripts: a sentiment model to measure, and a server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def sentiment_model_dir(argv: list[str]) -> Path:
    """argv[1], else the model ``make demo`` trains, else a quick one trained on first use."""
    if len(argv) > 1:
        return Path(argv[1])
    for candidate in (Path("runs/demo/nlp.sentiment"), Path("runs/bench-sentiment")):
        if (candidate / "polymodal.yaml").is_file():
            return candidate
    from polymodal.scenario import load_scenario, run_scenario

    run_scenario(load_scenario("nlp.sentiment"), Path("runs/bench-sentiment"), quick=True,
                 progress=False)
    return Path("runs/bench-sentiment")


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(dirs: list[Path], *options: str) -> tuple[subprocess.Popen, str]:
    """``polymodal serve DIRS OPTIONS`` on a free port; returns once /ready answers 200."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", "serve",
                               *map(str, dirs), "--port", str(port), *options],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"polymodal serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/ready").status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.2)


def timed(function, repeats: int, warmup: bool = True) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of ``repeats`` calls (after one warm-up call unless ``warmup`` is
    False)."""
    import statistics

    if warmup:
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
