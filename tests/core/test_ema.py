"""``train.ema``: the moving average of the weights is what validation sees and what the
Trainer hands back, while the raw weights keep training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from polymodal.spec import TrainSpec
from polymodal.training import ModuleSteps, fit_steps
from polymodal.training.ema import WeightAverage


def _steps(module: nn.Module) -> ModuleSteps:
    def collate(rows: list[tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor([[x] for x, _ in rows]), torch.tensor([[y] for _, y in rows]))

    return ModuleSteps(module, collate=collate,
                       loss=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]),
                       identity={"kind": "line"}, batch_size=lambda b: len(b[0]))


def test_the_average_follows_the_weights_with_its_warm_up() -> None:
    module = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(0.0)
    average = WeightAverage(_steps(module), decay=0.9)
    expected = 0.0
    for n, value in enumerate([1.0, 2.0, 3.0], start=1):
        with torch.no_grad():
            module.weight.fill_(value)
        average.update()
        decay = min(0.9, (1 + n) / (10 + n))
        expected = decay * expected + (1 - decay) * value
        assert average.shadow["weight"].item() == pytest.approx(expected)
    with average.applied():
        assert module.weight.item() == pytest.approx(expected)
    assert module.weight.item() == 3.0  # the trained weight is back
    restored = WeightAverage(_steps(module), decay=0.9)
    restored.load_state(average.state())
    assert restored.updates == 3 and restored.shadow["weight"].item() == pytest.approx(expected)


def test_the_trainer_returns_the_averaged_weights(tmp_path: Path) -> None:
    rows = [(x / 10, 3 * x / 10) for x in range(-10, 11)]
    results = {}
    for ema in (None, 0.5):
        torch.manual_seed(0)
        module = nn.Linear(1, 1, bias=False)
        spec = TrainSpec(epochs=3, batch_size=4, lr=0.1, warmup=0.0, ema=ema,
                         schedule="constant", weight_decay=0.0)
        fit_steps(spec, _steps(module), rows, rows[::3], tmp_path / str(ema),
                  device=torch.device("cpu"), progress=False)
        results[ema] = module.weight.item()
    # The same optimisation; with the average the weight lags the raw one on its way to 3.
    assert 0 < results[0.5] < results[None] <= 3.2
