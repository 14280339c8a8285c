"""``polymodal demo``: each scenario's embedded default, end to end: train, evaluate on the
held-out data, predict the scenario's examples. The same for every scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polymodal.errors import unknown
from polymodal.scenario import DemoSummary

SHOWN_LIST = 4  # values of a long list (an embedding) shown in a summary
# Sections of a run's metrics that are not extra held-out scores for the headline.
SECTIONS = {"test", "validation", "baselines", "history", "extra_tests"}


def _short(value: Any) -> Any:
    """A prediction as a summary shows it: long lists cut to their first values."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 2 * SHOWN_LIST and all(
            isinstance(v, int | float) for v in value):
        return value[:SHOWN_LIST] + [f"... {len(value)} values"]
    return value


def run_demos(names: list[str], out_dir: Path, *, quick: bool = False,
              device: str | None = None, progress: bool = True) -> dict[str, DemoSummary]:
    """Train, evaluate on held-out data and predict examples; returns a summary per scenario."""
    import polymodal
    from polymodal.registry import get_registry
    from polymodal.scenario import load_scenario, run_scenario

    available = get_registry().names("scenario")
    for name in names:
        if name not in available:
            raise unknown("scenario", name, available)
    summary: dict[str, DemoSummary] = {}
    for name in names or available:
        scenario = load_scenario(name)
        result, demo = run_scenario(scenario, out_dir / name, quick=quick, device=device,
                                    progress=progress, demo=True)
        held_out = dict(result.metrics.get("test") or result.metrics.get("validation") or {})
        for section, values in result.metrics.items():  # other held-out scores (cold start)
            if isinstance(values, dict) and section not in SECTIONS:
                held_out.update({f"{section}.{k}": v for k, v in values.items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)})
        examples = demo.examples if demo else []
        predictions = polymodal.load(result.out_dir, device=device).predict(examples) \
            if examples else []
        baselines = {b: {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
                     for b, metrics in result.metrics.get("baselines", {}).items()}
        extra_tests = {t: {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
                       for t, metrics in result.metrics.get("extra_tests", {}).items()}
        summary[name] = DemoSummary.of(
            result.out_dir, result.seconds, held_out,
            [(ex, _short(p)) for ex, p in zip(examples, predictions, strict=True)],
            **({"baselines": baselines} if baselines else {}),
            **({"extra_tests": extra_tests} if extra_tests else {}))
    return summary
