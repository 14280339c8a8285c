"""A small served model shared by the serving tests: shop (category) and price (number) ->
label, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

SPEC = {
    "name": "shops",
    "inputs": [{"name": "shop", "modality": "categorical", "encoder": "categorical"},
               {"name": "price", "modality": "numeric", "encoder": "numeric"}],
    "fusion": {"name": "concat"},
    "task": {"name": "classification", "target": "label"},
    "train": {"epochs": 3, "lr": 0.01},
}
GOOD = {"records": [{"shop": "north", "price": 10}, {"shop": "east", "price": 14}]}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.pipeline import run_training
    from polymodal.spec import parse_spec
    from tests.conftest import review_rows

    out = tmp_path_factory.mktemp("serve") / "shops"
    run_training(parse_spec(SPEC), out, train_records=review_rows(200), progress=False)
    return out


def client(model_dir: Path, **settings: object) -> TestClient:
    from polymodal.serving.app import ServeSettings, create_app

    return TestClient(create_app([model_dir], ServeSettings(**settings)))
