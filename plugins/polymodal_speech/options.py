"""Options of the speech plugin's components (no torch imported)."""

from __future__ import annotations

from typing import Any

# the log-mel-cnn encoder of the audio modality
LOG_MEL_CNN: dict[str, Any] = {"n_mels": 64, "width": 128, "blocks": 3, "output_dim": 256,
                               "max_seconds": 30.0, "freq_mask": 12, "time_mask": 20,
                               "masks": 2}

# the asr-transcript encoder of the audio modality: a recogniser's transcript through a text
# encoder. ``asr``: a speech.asr model directory, or "embedded" (a ctc recogniser trained
# once into the cache on its own espeak-ng corpus of ``embedded_utterances`` for
# ``embedded_epochs``).
ASR_TRANSCRIPT: dict[str, Any] = {"asr": "embedded", "embedded_utterances": 1000,
                                  "embedded_epochs": 30, "text_encoder": "word-transformer",
                                  "text_options": {"dim": 64}}
