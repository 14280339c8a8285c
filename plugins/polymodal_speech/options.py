"""Options of the speech plugin's components (no torch imported)."""

from __future__ import annotations

from typing import Any

# the log-mel-cnn encoder of the audio modality
LOG_MEL_CNN: dict[str, Any] = {"n_mels": 64, "width": 128, "blocks": 3, "output_dim": 256,
                               "max_seconds": 30.0, "freq_mask": 12, "time_mask": 20,
                               "masks": 2}
