"""``speech.asr`` with pocketsphinx (CMU Sphinx, BSD-2): the classic offline recogniser, its
bundled US English acoustic model, dictionary and trigram LM; the baseline Whisper is
measured against. One decoder, one window at a time (it does not batch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.plugin import Record, SpecError
from polymodal_speech.audio import SAMPLE_RATE
from polymodal_speech.transcriber import Transcriber

INSTALL = "pip install pocketsphinx (or polymodal[speech])"


def pocketsphinx_decoder() -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise SpecError(f"the pocketsphinx backend needs pocketsphinx: {INSTALL}") from None
    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")


class PocketsphinxTranscriber(Transcriber):
    backend = "pocketsphinx"

    def __init__(self, device: Any, manifest: dict[str, Any] | None = None,
                 max_seconds: float = 600.0, window_seconds: float = 30.0) -> None:
        super().__init__(None, device, "fp32", manifest, max_seconds=max_seconds,
                         window_seconds=window_seconds)
        self.decoder = pocketsphinx_decoder()

    def preprocess(self, windows: list[Any]) -> list[bytes]:
        # 16-bit PCM, as the decoder reads it (a 16-bit file's samples come back exactly)
        return [np.clip(np.round(w.samples * 32768), -32768, 32767).astype(np.int16).tobytes()
                for w in windows]

    def forward(self, batch: list[bytes]) -> list[str]:
        texts = []
        for pcm in batch:
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hypothesis = self.decoder.hyp()
            texts.append(hypothesis.hypstr if hypothesis is not None else "")
        return texts

    def postprocess(self, outputs: list[str], batch: Any, records: list[Record]
                    ) -> list[Record]:
        return [{"text": text} for text in outputs]
