"""Wall time of ``polymodal --help`` as a ratio to ``python -c "import torch"`` (target <= 0.15).

Both are run in fresh processes, several times each, in the same run; the median is compared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7


def median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    help_s = median_seconds([sys.executable, "-m", "polymodal.cli.main", "--help"])
    listing_s = median_seconds([sys.executable, "-m", "polymodal.cli.main", "components",
                                "--json"])
    torch_s = median_seconds([sys.executable, "-c", "import torch"])
    print(f"{'command':<34}{'median s':>10}{'ratio to import torch':>24}")
    baseline = 'python -c "import torch"'
    print(f"{baseline:<34}{torch_s:>10.3f}{1.0:>24.3f}")
    print(f"{'polymodal --help':<34}{help_s:>10.3f}{help_s / torch_s:>24.3f}")
    print(f"{'polymodal components --json':<34}{listing_s:>10.3f}{listing_s / torch_s:>24.3f}")
    print(f"target: --help ratio <= 0.15 -> {'met' if help_s / torch_s <= 0.15 else 'NOT met'}")


if __name__ == "__main__":
    main()
