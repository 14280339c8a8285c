"""What every ``speech.asr`` backend shares: a record's ``audio`` decoded and cut into
windows at pauses (long audio through the core's windowed predictor), the windows'
transcripts joined into one with a timestamped segment per window, and the scores (WER and
CER after one normaliser, per file and overall)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polymodal.plugin import DataError, Record, WindowedPredictor
from polymodal_speech.audio import SAMPLE_RATE, audio_name, read_audio, speech_windows


@dataclass
class AudioWindow:
    """One window of a record's audio: its samples and where it starts and ends (s)."""

    samples: np.ndarray
    start: float
    end: float


class Transcriber(WindowedPredictor):
    """A record ``{"audio": path or bytes}`` -> ``{"text", "segments": [{"start", "end",
    "text"}]}``. A backend gives ``preprocess`` (windows -> its inputs), ``forward`` and
    ``postprocess`` (-> ``{"text"}`` per window)."""

    scenario = "speech.asr"
    backend = ""

    def __init__(self, module: Any, device: Any, precision: str = "fp32",
                 manifest: dict[str, Any] | None = None, *, max_seconds: float = 600.0,
                 window_seconds: float = 30.0) -> None:
        super().__init__(module, device, precision, manifest)
        # The longest audio taken; windows at most window_seconds (Whisper sees 30 s).
        self.max_seconds, self.window_seconds = max_seconds, window_seconds

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "audio", "modality": "audio", "encoder": self.backend}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "transcription", "target": "text",
                "segments": "[{start, end, text}] in seconds, one per window of the audio "
                            "that holds speech (none for silence)"}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            if record.get("audio") is None:
                raise DataError(f"record {index + 1}: needs \"audio\" (a path or a file)")

    def check_request(self, records: list[Record]) -> None:
        """Served: the durations from the headers before anything is decoded."""
        from polymodal.plugin import RequestTooLarge
        from polymodal_speech.audio import audio_seconds

        self.validate(records)
        total = sum(audio_seconds(r["audio"]) for r in records)
        if total > self.max_seconds:
            raise RequestTooLarge(f"{total:.0f} s of audio in one request (at most "
                                  f"{self.max_seconds:g} s)")

    def windows(self, record: Record) -> list[AudioWindow]:
        samples = read_audio(record["audio"], max_seconds=self.max_seconds)
        return [AudioWindow(samples[start:end], start / SAMPLE_RATE, end / SAMPLE_RATE)
                for start, end in speech_windows(samples, self.window_seconds)]

    def combine(self, record: Record, results: list[Record], windows: list[Any]) -> Record:
        segments = [{"start": round(w.start, 2), "end": round(w.end, 2), "text": r["text"]}
                    for r, w in zip(results, windows, strict=True)]
        text = " ".join(s["text"] for s in segments if s["text"])
        combined: Record = {"text": text, "segments": segments}
        if any("words" in r for r in results):  # word times from the window's start
            combined["words"] = [
                {**word, "start": round(w.start + word["start"], 2),
                 "end": round(w.start + word["end"], 2)}
                for r, w in zip(results, windows, strict=True) for word in r.get("words", [])]
        return combined

    def sample_windows(self, records: list[Record] | None, count: int = 3
                       ) -> list[AudioWindow]:
        """Windows to trace an export with: the records' first ones, or rising tones (5 s,
        with the range of real features) when there are none."""
        windows = [w for r in (records or [])[:count] for w in self.windows(r)][:count]
        if windows:
            return windows
        seconds = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
        return [AudioWindow((0.1 * np.sin(2 * np.pi * (200 * k + 300 * seconds) * seconds))
                            .astype(np.float32), 0.0, 5.0) for k in range(1, count + 1)]

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        labelled = [r for r in records if isinstance(r.get("text"), str)]
        if not labelled:
            raise DataError("no record has a reference transcript (\"text\")")
        return labelled

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        from polymodal_speech.transcripts import transcript_scores

        return transcript_scores([r["text"] for r in records],
                                 [p["text"] for p in predictions],
                                 [audio_name(r["audio"]) for r in records])
