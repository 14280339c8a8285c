"""``polymodal demo``: each scenario's embedded default, end to end."""

from __future__ import annotations

from pathlib import Path

from polymodal.errors import unknown
from polymodal.scenario import DemoSummary


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
        if scenario.run_demo is not None:
            summary[name] = scenario.run_demo(out_dir / name, quick=quick, device=device)
            continue
        result, demo = run_scenario(scenario, out_dir / name, quick=quick, device=device,
                                    progress=progress)
        held_out = result.metrics.get("test") or result.metrics.get("validation") or {}
        examples = demo.examples if demo else []
        predictions = polymodal.load(result.out_dir, device=device).predict(examples) \
            if examples else []
        baselines = {name: {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
                     for name, metrics in result.metrics.get("baselines", {}).items()}
        summary[name] = DemoSummary(
            out=str(result.out_dir), seconds=round(result.seconds, 1),
            metrics={k: v for k, v in held_out.items() if not isinstance(v, dict | list)},
            examples=list(zip(examples, predictions, strict=True)),
            extra={"baselines": baselines} if baselines else {})
    return summary
