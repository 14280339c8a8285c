"""``polymodal serve --workers N``: uvicorn starts N processes, each building the app from a
configuration the parent puts in the environment (uvicorn needs an import string to fork)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from polymodal.serving.app import ServeSettings, create_app

WORKER_CONFIG_ENV = "POLYMODAL_SERVE_CONFIG"


def check_model_dirs(model_dirs: list[str]) -> None:
    """Every directory holds a readable manifest (the cheap check before forking)."""
    from polymodal.artifacts import read_manifest

    for directory in model_dirs:
        read_manifest(Path(directory))


def worker_config(model_dirs: list[str], settings: ServeSettings, device: str | None) -> str:
    return json.dumps({"model_dirs": [str(Path(d).resolve()) for d in model_dirs],
                       "settings": dataclasses.asdict(settings), "device": device})


def app_from_env() -> Any:
    """The app of one worker process (uvicorn calls this factory in each)."""
    from polymodal.serving.protocol import protocol_with

    config = json.loads(os.environ[WORKER_CONFIG_ENV])
    protocol_with(config["settings"]["header_timeout_s"])
    return create_app(config["model_dirs"], ServeSettings(**config["settings"]),
                      device=config["device"])
