"""Shared encoders: resident memory of one server holding 3 models that use the same frozen
MiniLM (one copy through the component hub) against 3 servers with one model each.

The 3 models are quick nlp.sentiment linear probes on frozen MiniLM with different seeds,
trained into runs/bench-shared-{0,1,2} on first use.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
from _common import rss_mib, start_server


def models() -> list[Path]:
    from polymodal.scenario import load_scenario, run_scenario

    dirs = []
    for seed in range(3):
        out = Path(f"runs/bench-shared-{seed}")
        if not (out / "polymodal.yaml").is_file():
            run_scenario(load_scenario("nlp.sentiment"), out, quick=True, progress=False,
                         overrides=[f"train.seed={seed}"])
        dirs.append(out)
    return dirs


def serve(dirs: list[Path]) -> subprocess.Popen:
    server, base = start_server(dirs)
    for directory in dirs:  # one prediction each, so every model has run once
        httpx.post(f"{base}/v1/models/{directory.name}/predict",
                   json={"records": [{"text": "nice tea"}]}, timeout=60).raise_for_status()
    return server


def main() -> None:
    dirs = models()
    shared = serve(dirs)
    shared_mib = rss_mib(shared.pid)
    separate = [serve([d]) for d in dirs]
    separate_mib = sum(rss_mib(p.pid) for p in separate)
    for proc in [shared, *separate]:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    print(f"{'setup':<44}{'resident MiB':>14}")
    print(f"{'1 server, 3 models sharing frozen MiniLM':<44}{shared_mib:>14.0f}")
    print(f"{'3 servers, 1 model each':<44}{separate_mib:>14.0f}")
    print(f"memory ratio shared / separate: {shared_mib / separate_mib:.2f}")


if __name__ == "__main__":
    main()
