"""Statistics a user reads off a run: the bootstrap interval of AUROC, log-read skewed
numbers, and a validation split that keeps a group (a patient's visits) on one side."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.classification import binary_auroc

from polymodal.encoders.numeric import NumericProcessor
from polymodal.pipeline import split_validation
from polymodal.tasks import intervals
from polymodal.tasks.intervals import bootstrap_auroc


def test_each_bootstrap_resample_is_the_auroc_of_that_resample(monkeypatch) -> None:
    generator = torch.Generator().manual_seed(3)
    scores = torch.rand(300, generator=generator).round(decimals=1)  # many ties
    positive = torch.rand(300, generator=generator) < 0.2 + 0.5 * scores
    monkeypatch.setattr(intervals, "CHUNK", 1)
    for seed in range(5):  # one resample, level 0: both bounds are that resample's AUROC
        draw = torch.randint(0, 300, (1, 300), generator=torch.Generator().manual_seed(seed))
        expected = float(binary_auroc(scores[draw[0]], positive[draw[0]].long()))
        low, high = bootstrap_auroc(scores, positive, resamples=1, level=0.0, seed=seed)
        assert low == pytest.approx(expected, abs=1e-6) and high == low


def test_the_interval_brackets_the_estimate_and_narrows_with_more_data() -> None:
    def interval(n: int) -> tuple[float, float, float]:
        generator = torch.Generator().manual_seed(0)
        scores = torch.rand(n, generator=generator)
        positive = torch.rand(n, generator=generator) < scores  # AUROC about 0.83
        low, high = bootstrap_auroc(scores, positive)
        return low, float(binary_auroc(scores, positive.long())), high

    low, point, high = interval(200)
    assert low < point < high and 0.05 < high - low < 0.25
    low_big, point_big, high_big = interval(5000)
    assert low_big < point_big < high_big and high_big - low_big < (high - low) / 3
    scores, positive = torch.arange(20.0), torch.arange(20) % 3 == 0
    assert bootstrap_auroc(scores, positive, seed=1) == bootstrap_auroc(scores, positive,
                                                                        seed=1)
    assert bootstrap_auroc(scores, positive, seed=1) != bootstrap_auroc(scores, positive,
                                                                        seed=2)
    assert all(math.isnan(b) for b in bootstrap_auroc(torch.rand(5), torch.zeros(5).bool()))


def test_skewed_non_negative_numbers_are_read_as_logs() -> None:
    values = [{"bili": b, "age": a} for b, a in zip(
        [0.5, 0.7, 0.8, 1.0, 1.1, 1.3, 2.0, 3.5, 8.0, 25.0],
        [40, 45, 50, 52, 55, 58, 60, 63, 66, 70], strict=True)]
    processor = NumericProcessor(0, log_skewed=True)
    processor.fit(values)
    assert processor.names == ["age", "bili"] and processor.log == [False, True]
    logs = [math.log1p(v["bili"]) for v in values]
    mean = sum(logs) / len(logs)
    std = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    out = processor([{"bili": 25.0, "age": 40}, {"bili": -1.0}])["values"]
    assert out[0, 1].item() == pytest.approx((math.log1p(25.0) - mean) / std, rel=1e-5)
    assert out[1, 1].item() == pytest.approx((0.0 - mean) / std, rel=1e-5)  # read as 0
    restored = NumericProcessor(0, log_skewed=True)
    restored.load_state(processor.state())
    assert torch.equal(restored([{"bili": 25.0, "age": 40}])["values"], out[:1])
    plain = NumericProcessor(0)
    plain.fit(values)
    assert plain.log == [False, False]


def test_a_grouped_validation_split_keeps_each_group_on_one_side() -> None:
    records = [{"patient_id": str(p), "visit": v} for p in range(40) for v in range(p % 5 + 1)]
    train, val = split_validation(records, 0.25, seed=0, group="patient_id")
    assert {r["patient_id"] for r in train}.isdisjoint({r["patient_id"] for r in val})
    assert len({r["patient_id"] for r in val}) == 10  # a quarter of the 40 patients
    assert len(train) + len(val) == len(records)
    # Without a group the split is by record, as before (same records, same seed).
    plain_train, plain_val = split_validation(records, 0.25, seed=0)
    assert len(plain_val) == round(len(records) * 0.25)
    with pytest.raises(Exception, match="groups of 'patient_id'"):
        split_validation([{"patient_id": "1"}, {"patient_id": "1"}], 0.5, 0, "patient_id")
