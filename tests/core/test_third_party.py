"""A third-party distribution outside the repo, written against ``polymodal.plugin`` only,
registers a fusion a spec uses by name, a reader for its own file format that training
reads, and a CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from polymodal.testing import make_distribution
from tests.conftest import review_rows, run_cli

PLUGIN = '''
import click
from torch import nn
from polymodal.plugin import FusedOutput, Fusion, hookimpl


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


def read_reviews(path):
    """``shop|price|label`` lines; '#' starts a comment."""
    records = []
    with open(path) as lines:
        for line in lines:
            if line.strip() and not line.startswith("#"):
                shop, price, label = line.strip().split("|")
                records.append({"shop": shop, "price": float(price), "label": label})
    return records


@click.command("shout")
@click.argument("words", nargs=-1)
def shout(words):
    """Print WORDS in capitals."""
    click.echo(" ".join(words).upper())


@hookimpl
def register_fusions(register):
    register("mean-fusion", MeanFusion, description="average of projected modalities")


@hookimpl
def register_readers(register):
    register("reviews", read_reviews, extensions=[".reviews"], description="shop|price|label")


@hookimpl
def register_commands(cli):
    cli.add_command(shout)
'''


def test_third_party_fusion_trains(tmp_path: Path) -> None:
    plugin_root = tmp_path / "site"
    plugin_root.mkdir()
    make_distribution(plugin_root, "polymodal_meanfusion", PLUGIN, entry_point="meanfusion")
    env = {"PYTHONPATH": str(plugin_root)}

    listed = run_cli("components", "--kind", "fusion", "--json", env=env)
    fusions = {c["name"]: c for c in json.loads(listed.stdout)}
    assert fusions["mean-fusion"]["plugin"] == "meanfusion"

    readers = json.loads(run_cli("components", "--kind", "reader", "--json", env=env).stdout)
    assert {"name": "reviews", "plugin": "meanfusion"}.items() <= {
        r["name"]: r for r in readers}["reviews"].items()
    shouted = run_cli("shout", "hello", "there", env=env)
    assert shouted.returncode == 0 and shouted.stdout == "HELLO THERE\n"
    assert "shout" in run_cli("--help", env=env).stdout

    rows = review_rows(160)
    (tmp_path / "train.reviews").write_text("# shop|price|label\n" + "".join(
        f"{r['shop']}|{r['price']}|{r['label']}\n" for r in rows))
    spec = {
        "data": {"train": "train.reviews"},
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
    report = json.loads(result.stdout)
    assert report["metrics"]["validation"]["accuracy"] > 0.8
    manifest = yaml.safe_load((tmp_path / "m" / "polymodal.yaml").read_text())
    assert manifest["versions"]["plugin:meanfusion"] == "1.2.3"
