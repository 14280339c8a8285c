"""A third-party distribution outside the repo registers a fusion a spec uses by name."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from polymodal.testing import make_distribution
from tests.conftest import review_rows, run_cli, write_csv

PLUGIN = '''
import torch
from torch import nn
from polymodal import hookimpl
from polymodal.fusions import Fusion, FusedOutput


class MeanFusion(Fusion):
    """Project every modality to one width and average over those present."""

    def __init__(self, input_dims, width=16):
        super().__init__(input_dims)
        self.output_dim = width
        self.project = nn.ModuleDict({f: nn.Linear(d, width) for f, d in input_dims.items()})

    def forward(self, outputs, present):
        total = 0
        count = 0
        for f in self.fields:
            w = present[f].float().unsqueeze(-1)
            total = total + self.project[f](outputs[f].pooled) * w
            count = count + w
        return FusedOutput(pooled=total / count.clamp(min=1.0))


@hookimpl
def register_fusions(register):
    register("mean-fusion", MeanFusion, description="average of projected modalities")
'''


def test_third_party_fusion_trains(tmp_path: Path) -> None:
    plugin_root = tmp_path / "site"
    plugin_root.mkdir()
    make_distribution(plugin_root, "polymodal_meanfusion", PLUGIN, entry_point="meanfusion")
    env = {"PYTHONPATH": str(plugin_root)}

    listed = run_cli("components", "--kind", "fusion", "--json", env=env)
    fusions = {c["name"]: c for c in json.loads(listed.stdout)}
    assert fusions["mean-fusion"]["plugin"] == "meanfusion"

    write_csv(tmp_path / "train.csv", review_rows(160))
    spec = {
        "data": {"train": "train.csv"},
        "inputs": [{"name": "shop", "modality": "categorical", "encoder": "categorical"},
                   {"name": "price", "modality": "numeric", "encoder": "numeric"}],
        "fusion": {"name": "mean-fusion", "options": {"width": 8}},
        "task": {"name": "classification", "target": "label"},
        "train": {"epochs": 3, "lr": 0.01},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = run_cli("train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "m"),
                     "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["validation"]["accuracy"] > 0.8
    manifest = yaml.safe_load((tmp_path / "m" / "polymodal.yaml").read_text())
    assert manifest["versions"]["plugin:meanfusion"] == "1.2.3"
