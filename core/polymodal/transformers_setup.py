"""What every plugin that loads a transformers checkpoint sets first: the Hugging Face hub
offline (a source is always a local directory; nothing is downloaded) and transformers'
warnings and progress bars quiet (they would interleave with the CLI's output)."""

from __future__ import annotations

import os


def offline_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
